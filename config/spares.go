package config

// deriveSpares gives the spare-server keys the file does not set values
// that fit the pool it describes, so that every min_servers/max_servers
// pair Net::Server::PreFork's rules allow is valid on its own:
//
//	max_spare_servers = min(10, max_servers - 1)
//	min_spare_servers = min(2, min_servers, max_spare_servers)
//
// A key the file sets is kept as written, and an invalid value stays an
// error (validateDaemon). With both defaults in range (max_servers > 10,
// min_servers ≥ 2) this is the plain default, 2 and 10.
func deriveSpares(d *Daemon, minSet, maxSet bool) {
	if !maxSet {
		d.MaxSpareServers = max(min(DefaultMaxSpareServers, d.MaxServers-1), 0)
		if minSet && d.MinSpareServers > d.MaxSpareServers && d.MinSpareServers < d.MaxServers {
			d.MaxSpareServers = d.MinSpareServers
		}
	}
	if !minSet {
		d.MinSpareServers = max(min(DefaultMinSpareServers, d.MinServers, d.MaxSpareServers), 0)
		if d.MinServers == 0 { // on demand: once woken, one idle spare
			d.MinSpareServers = min(1, d.MaxSpareServers)
		}
	}
}
