# Perl's Cache::Memcached::Fast for scripts/client-matrix.py:
#     perl memcached_fast.pl HOST:PORT
# The common workload: values, a multi-get, CAS conflicts, incr totals,
# add/replace/append/delete/touch. Exit status 0 when every check held.
use strict;
use warnings;
use Cache::Memcached::Fast;

sub check {
    my ($cond, $what) = @_;
    return if $cond;
    print STDERR "FAILED: $what\n";
    exit 1;
}

my $m = Cache::Memcached::Fast->new({
    servers => [$ARGV[0]], connect_timeout => 5, io_timeout => 5,
    close_on_error => 1, utf8 => 0,
});
my $p = 'perl';

my %values = map { ("$p:k$_" => "v$_-" . ('x' x ($_ * 37))) } 0 .. 99;
check($m->set($_, $values{$_}), "set $_") for sort keys %values;
my $got = $m->get_multi(keys %values, "$p:missing1", "$p:missing2");
check(scalar(keys %$got) == 100, 'multi-get returned ' . scalar(keys %$got) . ' of 100 keys');
check(defined $got->{$_} && $got->{$_} eq $values{$_}, "multi-get value of $_") for keys %values;

my $bin = join('', map { chr } 0 .. 255) x 3 . "\r\nEND\r\n\0";
check($m->set("$p:bin", $bin), 'set binary');
check($m->get("$p:bin") eq $bin, 'binary value round trip');
my $big = '0123456789' x 50000;
check($m->set("$p:big", $big), 'set 500 KB');
check($m->get("$p:big") eq $big, '500 KB value round trip');

# CAS: stale refused, fresh stored, missing key refused.
check($m->set("$p:cas", 'one'), 'set cas key');
my $g = $m->gets("$p:cas");
check($m->set("$p:cas", 'two'), 'overwrite cas key');
check(!$m->cas("$p:cas", $g->[0], 'three'), 'stale CAS refused');
check($m->get("$p:cas") eq 'two', 'stale CAS left the value alone');
$g = $m->gets("$p:cas");
check($m->cas("$p:cas", $g->[0], 'four'), 'fresh CAS stored');
check($m->get("$p:cas") eq 'four', 'CAS value');
check(!$m->cas("$p:nocas", 12345, 'x'), 'CAS of a missing key');

check($m->set("$p:n", '10'), 'set counter');
$m->incr("$p:n", 3) for 1 .. 50;
check($m->incr("$p:n", 0) == 160, 'incr total');
check($m->decr("$p:n", 200) == 0, 'decr stops at 0');
check(!$m->incr("$p:nocounter", 1), 'incr of a missing key');

check(!$m->add("$p:k0", 'other'), 'add of an existing key refused');
check($m->add("$p:new", 'new'), 'add of a new key');
check(!$m->replace("$p:none", 'x'), 'replace of a missing key refused');
check($m->replace("$p:k1", 'replaced') && $m->get("$p:k1") eq 'replaced', 'replace');
check($m->append("$p:new", '+tail') && $m->get("$p:new") eq 'new+tail', 'append');
check($m->touch("$p:k2", 100), 'touch');
check($m->delete("$p:k3"), 'delete');
check(!defined $m->get("$p:k3"), 'deleted key gone');
check(!$m->delete("$p:k3"), 'delete of a missing key');
print "Cache::Memcached::Fast: all checks passed\n";
