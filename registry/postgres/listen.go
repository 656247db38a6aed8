package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/nsfd/nsfd/internal/sqlstore"
)

// listen is the dialect's Listen: it opens a connection of its own (not
// one of the pool's), LISTENs on channel, and calls wake with the payload
// of each notification, until ctx ends or the connection fails.
func listen(ctx context.Context, s *sqlstore.Store, channel string, listening func(), wake func(string)) error {
	cfg, err := config(ctx, s.Writer())
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return s.Dialect().Scrub(fmt.Errorf("listen: %w", err))
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return s.Dialect().Scrub(fmt.Errorf("listen: %w", err))
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// Ended by its caller: pgx words that as a timeout
				// ("context already done"), not as ctx's error.
				return ctx.Err()
			}
			return err
		}
		if n != nil { // nil: another message woke pgx
			wake(n.Payload)
		}
	}
}

// config returns the connection settings of db's pgx pool.
func config(ctx context.Context, db *sql.DB) (*pgx.ConnConfig, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var cfg *pgx.ConnConfig
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("listen: driver connection %T is not pgx's", dc)
		}
		cfg = sc.Conn().Config() // a copy
		// The copy still delivers notifications to the pool's
		// connection; a nil handler makes pgx buffer them for
		// WaitForNotification.
		cfg.OnNotification = nil
		return nil
	})
	return cfg, err
}
