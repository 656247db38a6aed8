// Package web is nsfd's status page: every daemon at a glance, one daemon
// with its workers, its configuration (secrets masked) and its log lines
// following live, the fleet when the registry is shared, and the actions
// restart, stop, start and scale.
//
// The page is a client of the control API (supervisor.UI): everything it
// shows comes from the answers `nsfd status --json` prints, so the two
// never disagree. It is rendered on the server with html/template and
// reads without JavaScript; a little script (assets/page.js, no build
// step) refreshes the tables every two seconds and follows the log through
// server-sent events.
//
// On the control socket the socket's caller check lets the reader in. On
// http_addr the page checks HTTP basic authentication against http_users, a
// tokens file (wire.Tokens: USER:BCRYPT[:COMMANDS]; a user limited to the
// command view may read but not act). Every action is a POST carrying a
// token bound to the user (an HMAC under a key made at start), and the
// browser's own cross-origin headers are checked too
// (http.CrossOriginProtection): a form posted from another site is refused.
// Each action is logged by the master with who asked.
package web
