// Package config reads nsfd's configuration: etc/nsfd.ini for the master and
// one file per daemon (etc/NAME.ini, or a Net::Server conf file), into the
// typed structs the supervisor, the pools and the registry are built from.
//
// Load reads a whole etc directory into a Set; Check reports every problem in
// it at once, for `nsfd check`. LoadMaster and LoadDaemon read single files.
// Every problem is an *Error naming the file, the line and the key, with a hint
// when the key looks like a typo of a known one; a file's problems come
// together as Errors, never just the first.
//
// Daemon files are INI (gopkg.in/ini.v1: a default section of keys and an
// [env] section of environment variables) or Net::Server's own conf format
// (`key value` lines, `#` comments), detected from the content or a .conf
// extension. Net::Server's option names and defaults are used wherever
// Net::Server has one, and its PreFork validation rules hold; Net::Server keys
// that make no sense under a supervisor load with a warning. Relative paths
// resolve against the directory of the file that names them.
//
// The key table, Keys, is the single source of the known keys: the loaders'
// unknown-key check, the typo hints and docs/config.md are all derived from it.
//
// Every file is read by one reader (readFile) that never blocks on what a
// path names and never applies half of a file: regular files only, opened
// non-blocking, at most MaxFileSize, not while another process writes them,
// read again if they change meanwhile. What a configuration may do depends
// on the user the master runs as (RunAs): as root, files and directories
// that other users could write are refused (ErrUntrusted); not as root,
// user, group and chroot are (ErrNotRoot). Load checks for the current
// user, CheckAs for any, so that `nsfd check` run by anyone reports what
// `nsfd run` would refuse.
//
// Each Daemon carries a Hash of its effective configuration, so that a reload
// can tell unchanged daemons from changed ones, and PoolOnlyChange tells a
// change the running pool can apply in place from one that rolls the workers.
package config
