<?php
// PHP's Memcached extension (php-memcached, over libmemcached) for
// scripts/client-matrix.py:
//     php php_memcached.php ascii|binary HOST:PORT
// The common workload: values, a multi-get, CAS conflicts, incr totals,
// add/replace/append/delete/touch. Exit status 0 when every check held.
function check($cond, $what) {
    if (!$cond) {
        fwrite(STDERR, "FAILED: $what\n");
        exit(1);
    }
}

[$_, $mode, $server] = $argv;
[$host, $port] = explode(':', $server);
$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, $mode === 'binary');
$m->setOption(Memcached::OPT_COMPRESSION, false);
$m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 5000);
$m->setOption(Memcached::OPT_RECV_TIMEOUT, 5000000);
$m->setOption(Memcached::OPT_SEND_TIMEOUT, 5000000);
$m->addServer($host, (int)$port);
$p = "php$mode";

$keys = [];
$values = [];
for ($i = 0; $i < 100; $i++) {
    $k = "$p:k$i";
    $keys[] = $k;
    $values[$k] = "v$i-" . str_repeat('x', $i * 37);
    check($m->set($k, $values[$k]), "set $k");
}
$got = $m->getMulti(array_merge($keys, ["$p:missing1", "$p:missing2"]));
check(is_array($got) && count($got) === 100, 'multi-get returned ' . (is_array($got) ? count($got) : 'nothing') . ' of 100 keys');
foreach ($keys as $k) {
    check($got[$k] === $values[$k], "multi-get value of $k");
}

$bin = '';
for ($i = 0; $i < 256; $i++) {
    $bin .= chr($i);
}
$bin = str_repeat($bin, 3) . "\r\nEND\r\n\0";
check($m->set("$p:bin", $bin), 'set binary');
check($m->get("$p:bin") === $bin, 'binary value round trip');
$big = str_repeat('0123456789', 50000);
check($m->set("$p:big", $big), 'set 500 KB');
check($m->get("$p:big") === $big, '500 KB value round trip');

// CAS: stale refused (RES_DATA_EXISTS), fresh stored.
check($m->set("$p:cas", 'one'), 'set cas key');
$e = $m->get("$p:cas", null, Memcached::GET_EXTENDED);
check(is_array($e) && $e['value'] === 'one', 'get with cas');
check($m->set("$p:cas", 'two'), 'overwrite cas key');
check($m->cas($e['cas'], "$p:cas", 'three') === false, 'stale CAS refused');
check($m->getResultCode() === Memcached::RES_DATA_EXISTS, 'stale CAS says DATA_EXISTS, not ' . $m->getResultMessage());
check($m->get("$p:cas") === 'two', 'stale CAS left the value alone');
$e = $m->get("$p:cas", null, Memcached::GET_EXTENDED);
check($m->cas($e['cas'], "$p:cas", 'four'), 'fresh CAS stored');
check($m->get("$p:cas") === 'four', 'CAS value');
check($m->cas(12345, "$p:nocas", 'x') === false && $m->getResultCode() === Memcached::RES_NOTFOUND, 'CAS of a missing key');

check($m->set("$p:n", '10'), 'set counter');
for ($i = 0; $i < 50; $i++) {
    $m->increment("$p:n", 3);
}
check($m->increment("$p:n", 0) === 160, 'incr total');
check($m->decrement("$p:n", 200) === 0, 'decr stops at 0');
check($m->increment("$p:nocounter", 1) === false, 'incr of a missing key');

check($m->add($keys[0], 'other') === false, 'add of an existing key refused');
check($m->add("$p:new", 'new'), 'add of a new key');
check($m->replace("$p:none", 'x') === false, 'replace of a missing key refused');
check($m->replace($keys[1], 'replaced') && $m->get($keys[1]) === 'replaced', 'replace');
check($m->append("$p:new", '+tail') && $m->get("$p:new") === 'new+tail', 'append');
check($m->touch($keys[2], 100), 'touch');
check($m->delete($keys[3]), 'delete');
check($m->get($keys[3]) === false && $m->getResultCode() === Memcached::RES_NOTFOUND, 'deleted key gone');
check($m->delete($keys[3]) === false, 'delete of a missing key');
echo "php-memcached $mode: all checks passed\n";
