#!/usr/bin/env bash
# Regenerates the test certificates (tests/tls.rs): a CA, a server
# certificate for 127.0.0.1/localhost signed by it, a client certificate
# signed by it, and a self-signed client certificate nothing trusts.
# Valid for 100 years; run again only to change them.
set -euo pipefail
cd "$(dirname "$0")"
days=36500
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days -subj "/CN=rmemcached test CA" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > server.ext
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days $days -extfile server.ext 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in server.key -outform DER -out server.der
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > client.ext
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=client" 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days $days -extfile client.ext 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout stranger.key -out stranger.pem -days $days -subj "/CN=stranger" 2>/dev/null
rm -f server.csr client.csr server.ext client.ext ca.srl
