#!/usr/bin/perl
# star-deploy-demo: a tiny TCP service for the server.service and server.wait
# scenario (stdlib/testdata/debian/20-server.star). It answers every
# connection to 127.0.0.1:8022 with one line and closes it.
use strict;
use warnings;
use IO::Socket::INET;

my $server = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1',
    LocalPort => 8022,
    Listen    => 5,
    ReuseAddr => 1,
) or die "star-deploy-demo: listen on 127.0.0.1:8022: $!\n";
while (my $client = $server->accept) {
    print $client "star-deploy-demo\n";
    close $client;
}
