# Ruby's Dalli (binary protocol) for scripts/client-matrix.py:
#     ruby dalli.rb HOST:PORT
# The common workload: values, a multi-get, CAS conflicts, incr totals,
# add/replace/append/delete/touch. Exit status 0 when every check held.
require 'dalli'

def check(cond, what)
  return if cond
  warn "FAILED: #{what}"
  exit 1
end

# Dalli 3.0 answers some refusals (a CAS or a replace of a missing key)
# with a token of 0 rather than false: any of the three means "not stored".
def refused?(reply)
  [false, nil, 0].include?(reply)
end

server = ARGV.fetch(0)
dc = Dalli::Client.new(server, socket_timeout: 5, socket_max_failures: 1, compress: false)
p = 'dalli'

values = {}
100.times { |i| values["#{p}:k#{i}"] = "v#{i}-" + 'x' * (i * 37) }
values.each { |k, v| check(dc.set(k, v, 0, raw: true), "set #{k}") }
got = dc.get_multi(*values.keys, "#{p}:missing1", "#{p}:missing2")
check(got.size == 100, "multi-get returned #{got.size} of 100 keys")
values.each { |k, v| check(got[k] == v, "multi-get value of #{k}") }

bin = (0..255).map(&:chr).join.b * 3 + "\r\nEND\r\n\0".b
check(dc.set("#{p}:bin", bin, 0, raw: true), 'set binary')
check(dc.get("#{p}:bin").b == bin, 'binary value round trip')
big = '0123456789' * 50_000
check(dc.set("#{p}:big", big, 0, raw: true), 'set 500 KB')
check(dc.get("#{p}:big") == big, '500 KB value round trip')

# CAS: stale refused, fresh stored, missing key refused.
check(dc.set("#{p}:cas", 'one', 0, raw: true), 'set cas key')
_, token = dc.get_cas("#{p}:cas")
check(dc.set("#{p}:cas", 'two', 0, raw: true), 'overwrite cas key')
check(refused?(dc.set_cas("#{p}:cas", 'three', token, 0, raw: true)), 'stale CAS refused')
check(dc.get("#{p}:cas") == 'two', 'stale CAS left the value alone')
_, token = dc.get_cas("#{p}:cas")
check(dc.set_cas("#{p}:cas", 'four', token, 0, raw: true), 'fresh CAS stored')
check(dc.get("#{p}:cas") == 'four', 'CAS value')
check(refused?(dc.set_cas("#{p}:nocas", 'x', 12_345, 0, raw: true)), 'CAS of a missing key refused')
check(dc.get("#{p}:nocas").nil?, 'CAS of a missing key stored nothing')

check(dc.set("#{p}:n", '10', 0, raw: true), 'set counter')
50.times { dc.incr("#{p}:n", 3) }
check(dc.incr("#{p}:n", 0) == 160, 'incr total')
check(dc.decr("#{p}:n", 200) == 0, 'decr stops at 0')
check(dc.incr("#{p}:nocounter", 1).nil?, 'incr of a missing key')

check(refused?(dc.add("#{p}:k0", 'other', 0, raw: true)), 'add of an existing key refused')
check(dc.get("#{p}:k0") == values["#{p}:k0"], 'refused add left the value alone')
check(dc.add("#{p}:new", 'new', 0, raw: true), 'add of a new key')
check(refused?(dc.replace("#{p}:none", 'x', 0, raw: true)), 'replace of a missing key refused')
check(dc.get("#{p}:none").nil?, 'refused replace stored nothing')
check(dc.replace("#{p}:k1", 'replaced', 0, raw: true) && dc.get("#{p}:k1") == 'replaced', 'replace')
check(dc.append("#{p}:new", '+tail') && dc.get("#{p}:new") == 'new+tail', 'append')
check(dc.touch("#{p}:k2", 100), 'touch')
check(dc.delete("#{p}:k3"), 'delete')
check(dc.get("#{p}:k3").nil?, 'deleted key gone')
check(!dc.delete("#{p}:k3"), 'delete of a missing key')
puts 'dalli: all checks passed'
