//go:build !linux

package config

// hasACL cannot tell on this system whether path has an access control
// list; the mode bits are taken as the whole story.
func hasACL(string) bool { return false }
