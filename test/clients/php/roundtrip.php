<?php
// php-memcached (on libmemcached): SASL PLAIN needs the binary protocol.
[, $address, $key, $value] = $argv;
[$host, $port] = explode(':', $address);

function verdict(string $line): void
{
    echo "ROUNDTRIP $line\n";
    exit(str_starts_with($line, 'ok ') ? 0 : 1);
}

$client = new Memcached();
$client->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
$client->setOption(Memcached::OPT_CONNECT_TIMEOUT, 10000);
$client->setOption(Memcached::OPT_RECV_TIMEOUT, 10000000);
$client->setOption(Memcached::OPT_SEND_TIMEOUT, 10000000);
$client->addServer($host, (int) $port);
$client->setSaslAuthData(getenv('MEMCACHED_USERNAME'), getenv('MEMCACHED_PASSWORD'));
if (!$client->set($key, $value, 60)) {
    verdict('failed: set: ' . $client->getResultMessage());
}
$got = $client->get($key);
if ($got === false) {
    verdict('failed: get: ' . $client->getResultMessage());
}
verdict($got === $value ? "ok $got" : "failed: read back '$got'");
