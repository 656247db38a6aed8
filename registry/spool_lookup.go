package registry

import (
	"context"
	"fmt"
)

// Encodings returns the wire encoding of each running daemon called name, by
// node: what a client must speak to its endpoints. It is not part of the
// Registry interface (which stays as the master needs it); the client
// package asks for it through an interface of its own and falls back to
// List for registries without it. An unknown name gives an empty map.
func (s *store) Encodings(ctx context.Context, name string) (map[string]string, error) {
	rows, err := s.r.QueryContext(ctx, s.spoolQ().encodings, name)
	if err != nil {
		return nil, s.fail("encodings of", fmt.Sprintf("%q", name), err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var node, enc string
		if err := rows.Scan(&node, &enc); err != nil {
			return nil, s.fail("encodings of", fmt.Sprintf("%q", name), err)
		}
		out[node] = enc
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("encodings of", fmt.Sprintf("%q", name), err)
	}
	return out, nil
}
