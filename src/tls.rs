//! TLS: memcached's `tls.c` (`ssl_init`, `load_server_certificates`,
//! `refresh_certs`) on rustls, a memory-safe TLS library, instead of
//! OpenSSL.
//!
//! One [`TlsContext`] per process holds the server configuration every
//! new TLS connection starts from. `refresh_certs` builds a new one from
//! the same files; connections already open keep the one they started
//! with, as memcached's `SSL` objects keep their `SSL_CTX`'s certificate.
//! The byte stream over a socket is [`crate::conn::tls`].
//!
//! What maps onto rustls and what does not:
//! - `ssl_chain_cert`, `ssl_key` (`ssl_keyformat` 1: PEM, 2: DER; an
//!   ENGINE key is refused), `ssl_ca_cert` as in memcached.
//! - `ssl_verify_mode`: 0 asks no client certificate; 1 asks for one and
//!   checks it if given; 2 and 3 require one. rustls needs the CAs to
//!   check against, so modes 1 to 3 need `ssl_ca_cert` (memcached would
//!   start and then fail every client certificate).
//! - `ssl_ciphers`: OpenSSL's names of the TLS 1.2 suites rustls has; the
//!   TLS 1.3 suites are not set by this option, in OpenSSL either. Names
//!   rustls does not have are skipped, as OpenSSL skips unknown ones; a
//!   list with none it has is refused with memcached's message.
//! - `ssl_min_version`: rustls speaks TLS 1.2 and 1.3 only, so 0 and 1
//!   (TLS 1.0, 1.1) start with a warning and mean TLS 1.2.
//! - `ssl_session_cache`: a server-side session cache (resumption by
//!   session id), counted in `ssl_new_sessions`; off, no session resumes.
//! - `ssl_kernel_tls`: accepted with a warning; kernel TLS is not used.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::server::{
    NoServerSessionStorage, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::settings::TlsSettings;

/// Sessions the server-side cache keeps (`ssl_session_cache`).
const SESSION_CACHE_SIZE: usize = 1024;

/// The process's TLS state (memcached's `settings.ssl_ctx` and the TLS
/// counters).
#[derive(Debug)]
pub struct TlsContext {
    settings: TlsSettings,
    /// What a new connection starts from; replaced by `refresh_certs`.
    config: Mutex<Arc<ServerConfig>>,
    /// Relative time the certificates were last loaded.
    last_refresh: AtomicU32,
    /// Handshakes that failed (`ssl_handshake_errors`).
    pub handshake_errors: AtomicU64,
    /// Sessions put in the cache (`ssl_new_sessions`).
    pub new_sessions: Arc<AtomicU64>,
}

impl TlsContext {
    /// Load the certificates and build the configuration (memcached's
    /// `ssl_init`). The error is memcached's message; memcached exits with
    /// `EX_USAGE` on it. The clock starts later: [`TlsContext::mark_loaded`]
    /// sets the load time.
    pub fn new(settings: &TlsSettings) -> Result<TlsContext, String> {
        let new_sessions = Arc::new(AtomicU64::new(0));
        let config = build(settings, &new_sessions)?;
        Ok(TlsContext {
            settings: settings.clone(),
            config: Mutex::new(Arc::new(config)),
            last_refresh: AtomicU32::new(0),
            handshake_errors: AtomicU64::new(0),
            new_sessions,
        })
    }

    /// What the settings ask for that rustls does not do, as warnings for
    /// the start-up log.
    pub fn warnings(settings: &TlsSettings) -> Vec<String> {
        let mut v = Vec::new();
        if settings.min_version < 2 {
            v.push(format!(
                "ssl_min_version={}: TLS 1.0 and 1.1 are not spoken here (rustls); the minimum is TLS 1.2",
                settings.min_version
            ));
        }
        if settings.kernel_tls {
            v.push("ssl_kernel_tls: kernel TLS offload is not used here (rustls)".to_string());
        }
        v
    }

    /// The certificates were loaded at relative time `now`.
    pub fn mark_loaded(&self, now: u32) {
        self.last_refresh.store(now, Ordering::Relaxed);
    }

    /// The configuration a new connection starts from.
    pub fn config(&self) -> Arc<ServerConfig> {
        crate::sync::lock(&self.config).clone()
    }

    /// Bytes of plaintext a connection may buffer for sending
    /// (`ssl_wbuf_size`).
    pub fn wbuf_size(&self) -> usize {
        (self.settings.wbuf_size as usize).max(1024)
    }

    /// Whether `stats` shows `ssl_new_sessions`.
    pub fn session_cache(&self) -> bool {
        self.settings.session_cache
    }

    /// Seconds since the certificates were last loaded.
    pub fn since_refresh(&self, now: u32) -> u32 {
        now.saturating_sub(self.last_refresh.load(Ordering::Relaxed))
    }

    /// `refresh_certs`: load the files again. On failure the old
    /// configuration stays, and the error is memcached's message.
    pub fn refresh(&self, now: u32) -> Result<(), String> {
        let config = build(&self.settings, &self.new_sessions)?;
        *crate::sync::lock(&self.config) = Arc::new(config);
        self.last_refresh.store(now, Ordering::Relaxed);
        Ok(())
    }
}

/// memcached's `ssl_proto_text`: the `stats settings` name of a
/// `ssl_min_version`.
pub fn proto_text(min_version: i32) -> &'static str {
    match min_version {
        0 => "tlsv1.0",
        1 => "tlsv1.1",
        2 => "tlsv1.2",
        3 => "tlsv1.3",
        _ => "unknown",
    }
}

/// OpenSSL's names of the TLS 1.2 suites rustls (with ring) has.
const OPENSSL_NAMES: &[(&str, rustls::CipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The suites an OpenSSL cipher list selects: every TLS 1.3 suite, and
/// the TLS 1.2 suites it names. `None` when it names none rustls has.
fn select_suites(list: &str, all: &[SupportedCipherSuite]) -> Option<Vec<SupportedCipherSuite>> {
    let named: Vec<rustls::CipherSuite> = list
        .split([':', ',', ' '])
        .filter_map(|n| OPENSSL_NAMES.iter().find(|(o, _)| *o == n).map(|(_, s)| *s))
        .collect();
    if named.is_empty() {
        return None;
    }
    Some(
        all.iter()
            .filter(|s| s.version() == &rustls::version::TLS13 || named.contains(&s.suite()))
            .copied()
            .collect(),
    )
}

/// A session cache that counts the sessions put in it.
#[derive(Debug)]
struct CountingCache {
    inner: Arc<ServerSessionMemoryCache>,
    puts: Arc<AtomicU64>,
}

impl StoresServerSessions for CountingCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.inner.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// Build the server configuration from the files (memcached's
/// `load_server_certificates` and `ssl_init`).
fn build(s: &TlsSettings, new_sessions: &Arc<AtomicU64>) -> Result<ServerConfig, String> {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or("(null)".to_string(), |p| p.display().to_string())
    };
    let chain_err = |why: String| {
        format!(
            "Error loading the certificate chain: {} : {why}\r\n",
            path(&s.chain_cert)
        )
    };
    let chain: Vec<CertificateDer<'static>> = match &s.chain_cert {
        None => return Err(chain_err("no ssl_chain_cert given".into())),
        Some(p) => CertificateDer::pem_file_iter(p)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| chain_err(e.to_string()))?,
    };
    if chain.is_empty() {
        return Err(chain_err("no certificate in the file".into()));
    }
    let key_err = |why: String| format!("Error loading the key: {} : {why}\r\n", path(&s.key));
    let key: PrivateKeyDer<'static> = match (&s.key, s.keyformat) {
        (None, _) => return Err(key_err("no ssl_key given".into())),
        (Some(p), 1) => PrivateKeyDer::from_pem_file(p).map_err(|e| key_err(e.to_string()))?,
        (Some(p), 2) => {
            let der = std::fs::read(p).map_err(|e| key_err(e.to_string()))?;
            PrivateKeyDer::try_from(der).map_err(|e| key_err(e.to_string()))?
        }
        (Some(_), f) => {
            return Err(key_err(format!(
                "ssl_keyformat {f} is not supported (1: PEM, 2: DER; no ENGINE keys)"
            )))
        }
    };
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = &s.ciphers {
        provider.cipher_suites = select_suites(list, &provider.cipher_suites)
            .ok_or_else(|| format!("Error setting the provided cipher(s): {list}\n"))?;
    }
    let provider: Arc<CryptoProvider> = Arc::new(provider);
    let versions: &[&rustls::SupportedProtocolVersion] = if s.min_version >= 3 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("Error setting the TLS versions: {e}\n"))?;
    let verifier = if s.verify_mode == 0 {
        WebPkiClientVerifier::no_client_auth()
    } else {
        let ca = s.ca_cert.as_ref().ok_or_else(|| {
            format!(
                "ssl_verify_mode={} needs ssl_ca_cert, the CAs client certificates are checked against\n",
                s.verify_mode
            )
        })?;
        let ca_err = |why: String| {
            format!(
                "Error loading the CA certificate: {} : {why}\r\n",
                ca.display()
            )
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| ca_err(e.to_string()))? {
            let cert = cert.map_err(|e| ca_err(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        }
        let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let b = if s.verify_mode == 1 {
            b.allow_unauthenticated()
        } else {
            b
        };
        b.build().map_err(|e| ca_err(e.to_string()))?
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("Error validating the certificate: {e}\r\n"))?;
    config.session_storage = if s.session_cache {
        Arc::new(CountingCache {
            inner: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
            puts: new_sessions.clone(),
        })
    } else {
        Arc::new(NoServerSessionStorage {})
    };
    Ok(config)
}
