// Package fleettest runs a fleet of nsfd masters for tests and benchmarks:
// N nodes, each a network namespace of its own with one real `nsfd run`
// master (its own node_name and etc/), sharing one PostgreSQL registry that
// runs in a namespace of its own, all on one bridge, as hosts on one LAN:
//
//	198.18.0.1         PostgreSQL (registry/pgtest), its TCP listener
//	198.18.0.11 ...    node1 ... nodeN, their masters and workers
//	198.18.0.250       the client namespace, where Dial and Run run
//
// 198.18.0.0/15 is reserved for benchmarking (RFC 2544); the addresses exist
// only inside the namespaces the fleet makes, which are named after the
// test process and a counter (nsft<pid>x<n>-...), so that fleets of
// parallel test runs never meet, and a namespace left by a test binary that
// was killed is removed by the next fleet. The bridge and every veth live in
// those namespaces too: nothing is added to the host's own network.
//
//	f := fleettest.New(t, fleettest.Options{Nodes: 5, Nsfd: bin})
//	f.WriteAll("echo.ini", "command = ...\nport = {{addr}}:7001\n")
//	f.StartAll()
//	f.Nodes[0].Kill()        // SIGKILL its master; fails the test if a worker survives it
//	f.Nodes[1].Partition()   // its link to the bridge goes down: connects to it hang
//	f.Nodes[1].Heal()
//
// Everything is torn down by the test's cleanup, failed or not: processes
// killed, namespaces (with their links) deleted, the cluster removed. It
// needs root and iproute2's ip(8).
package fleettest
