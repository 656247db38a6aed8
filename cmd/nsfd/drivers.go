package main

// The registry engines nsfd.ini may name. Built with CGO_ENABLED=0, the
// SQLite driver says so when a SQLite registry is opened.
import (
	_ "github.com/nsfd/nsfd/registry/postgres"
	_ "github.com/nsfd/nsfd/registry/sqlite"
)
