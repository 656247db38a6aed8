// Command kv is a framework daemon: a key-value store that speaks nsfd's wire
// protocol, found by name through the registry. Run it under nsfd
// (etc/kv.ini) beside the queue daemon (etc/queue.ini), then:
//
//	nsfd call kv put '{"key":"a","value":"1"}'
//	nsfd call kv get '{"key":"a"}'            # prints 1
//	nsfd call kv del '{"key":"a"}'
//	nsfd call kv reindex                      # waits for the async result
//
// Commands (data → result):
//
//	put     {"key", "value"}   store value (any JSON) under key → {"key"}
//	get     {"key"}            → the value; 2303 if there is none
//	del     {"key"}            → nothing; 2303 if there is none
//	info    {}                 → {"node", "pid", "worker"}: who answered
//	reindex {"delay_ms"}       asynchronous: the job goes into the spool through
//	                           the queue daemon, the answer is 1001 with its id at
//	                           once, and the result, {"keys", "bytes"} counted after
//	                           delay_ms (default --reindex-delay), lands in the spool;
//	                           client.Call waits for it
//
// The store is a directory, one file per key (its name the key in base64url),
// written to a temporary file and renamed into place: every worker process
// of the daemon, and every node pointed at a shared directory, sees the
// same keys, and a reader never sees half a value. It is a sample, not a
// database: a value is not synced to disk before put answers, and two puts
// of one key race (the last rename wins).
//
// Flags:
//
//	--dir DIR             the store's directory (default $KV_DIR, else ./kv)
//	--concurrency N       connections a worker serves at once (default 64)
//	--encoding CODEC      wire codec, the daemon's `encoding` (default $NSFD_ENCODING, else json)
//	--reindex-delay D     how long reindex pretends to work (default 200ms)
//
// reindex needs the registry, to find the queue: the master passes its
// resolver socket in NSFD_RESOLVER (client.FromEnv).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/wire"
	"github.com/nsfd/nsfd/worker"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kv:", err)
		os.Exit(1)
	}
}

// MaxKey is the longest key, in bytes: its file name must stay under 255.
const MaxKey = 180

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fset := flag.NewFlagSet("kv", flag.ContinueOnError)
	dir := fset.String("dir", envOr("KV_DIR", "kv"), "the store's directory")
	concurrency := fset.Int("concurrency", 64, "connections served at once")
	encoding := fset.String("encoding", envOr(worker.EnvEncoding, wire.DefaultCodec), "wire codec")
	delay := fset.Duration("reindex-delay", 200*time.Millisecond, "how long reindex works")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fset.Args())
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	k := &kv{dir: *dir, delay: *delay, name: envOr(worker.EnvDaemon, "kv")}
	defer k.close()
	opts := wire.ServerOptions{Codec: *encoding, IdleTimeout: 5 * time.Minute}
	if _, err := wire.Lookup(*encoding); err != nil {
		return err
	}
	srv := &worker.Server{
		Handler: worker.HandlerFunc(func(ctx context.Context, c net.Conn) {
			if err := wire.ServeConn(ctx, c, k.mux(), opts); err != nil {
				log.Printf("kv: %v", err)
			}
		}),
		Concurrency: *concurrency,
	}
	fmt.Fprintf(stdout, "kv worker %d serving %s\n", os.Getpid(), *dir)
	err := srv.Serve(ctx)
	k.jobs.Wait() // reindex jobs store their results before the worker leaves
	return err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// kv is the daemon's state: its directory and, once an async command needs
// it, a client of the queue.
type kv struct {
	dir   string
	delay time.Duration
	name  string
	jobs  sync.WaitGroup // reindex jobs in the background

	once sync.Once
	m    *wire.Mux

	mu sync.Mutex
	c  *client.Client
}

func (k *kv) mux() *wire.Mux {
	k.once.Do(func() {
		k.m = wire.NewMux()
		k.m.RouteFunc("put", k.put)
		k.m.RouteFunc("get", k.get)
		k.m.RouteFunc("del", k.del)
		k.m.RouteFunc("reindex", k.reindex)
		k.m.RouteFunc("info", k.info)
	})
	return k.m
}

// client returns the client of the queue, opening it on first use.
func (k *kv) client(ctx context.Context) (*client.Client, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		c, err := client.FromEnv(ctx, client.Options{})
		if err != nil {
			return nil, err
		}
		k.c = c
	}
	return k.c, nil
}

func (k *kv) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		k.c.Close()
	}
}

type keyValue struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
}

// path returns the file of a key, or a response saying what is wrong with it.
func (k *kv) path(req *wire.Request, kvp *keyValue) (string, *wire.Response) {
	if err := req.DecodeData(kvp); err != nil {
		return "", wire.Failf(wire.CodeSyntaxError, "%v", err)
	}
	switch {
	case kvp.Key == "":
		return "", wire.Failf(wire.CodeMissingParam, "key")
	case len(kvp.Key) > MaxKey:
		return "", wire.Failf(wire.CodeValueRange, "key of %d bytes, longer than %d", len(kvp.Key), MaxKey)
	}
	return filepath.Join(k.dir, "k_"+base64.RawURLEncoding.EncodeToString([]byte(kvp.Key))), nil
}

func (k *kv) put(ctx context.Context, req *wire.Request) *wire.Response {
	var in keyValue
	path, fail := k.path(req, &in)
	if fail != nil {
		return fail
	}
	if len(in.Value) == 0 {
		return wire.Failf(wire.CodeMissingParam, "value")
	}
	f, err := os.CreateTemp(k.dir, ".tmp-")
	if err != nil {
		return wire.Fail(err)
	}
	_, err = f.Write(in.Value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return wire.Fail(err)
	}
	return wire.OK(keyValue{Key: in.Key})
}

func (k *kv) get(ctx context.Context, req *wire.Request) *wire.Response {
	var in keyValue
	path, fail := k.path(req, &in)
	if fail != nil {
		return fail
	}
	v, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return wire.Failf(wire.CodeNotExist, "key %q", in.Key)
	}
	if err != nil {
		return wire.Fail(err)
	}
	return wire.OK(json.RawMessage(v))
}

func (k *kv) del(ctx context.Context, req *wire.Request) *wire.Response {
	var in keyValue
	path, fail := k.path(req, &in)
	if fail != nil {
		return fail
	}
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return wire.Failf(wire.CodeNotExist, "key %q", in.Key)
	}
	if err != nil {
		return wire.Fail(err)
	}
	return wire.OK(nil)
}

// info says which node and worker answered.
func (k *kv) info(ctx context.Context, req *wire.Request) *wire.Response {
	return wire.OK(map[string]any{"node": os.Getenv(worker.EnvNode), "pid": os.Getpid(), "worker": os.Getenv(worker.EnvWorker)})
}

// reindex puts a job into the spool and answers at once; the work, and
// storing its result, go on in the background.
func (k *kv) reindex(ctx context.Context, req *wire.Request) *wire.Response {
	var in struct {
		DelayMS *int64 `json:"delay_ms"`
	}
	if err := req.DecodeData(&in); err != nil {
		return wire.Failf(wire.CodeSyntaxError, "%v", err)
	}
	delay := k.delay
	if in.DelayMS != nil {
		if *in.DelayMS < 0 || *in.DelayMS > 60_000 {
			return wire.Failf(wire.CodeValueRange, "delay_ms %d (0 to 60000)", *in.DelayMS)
		}
		delay = time.Duration(*in.DelayMS) * time.Millisecond
	}
	c, err := k.client(ctx)
	if err != nil {
		return wire.Failf(wire.CodeCommandFailed, "no queue: %v", err)
	}
	id, err := c.Enqueue(ctx, k.name, req)
	if err != nil {
		return wire.Failf(wire.CodeCommandFailed, "%v", err)
	}
	k.jobs.Go(func() {
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), delay+time.Minute)
		defer cancel()
		if err := c.Working(jctx, id); err != nil {
			log.Printf("kv: reindex %s: %v", id, err)
		}
		resp := k.count(jctx, delay)
		if err := c.Finish(jctx, id, resp); err != nil {
			log.Printf("kv: reindex %s: %v", id, err)
		}
	})
	return client.Accepted(id)
}

// count is reindex's work: count the keys and their bytes, after delay.
func (k *kv) count(ctx context.Context, delay time.Duration) *wire.Response {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return wire.Fail(ctx.Err())
	}
	ents, err := os.ReadDir(k.dir)
	if err != nil {
		return wire.Fail(err)
	}
	var out struct {
		Keys  int   `json:"keys"`
		Bytes int64 `json:"bytes"`
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "k_") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			out.Keys++
			out.Bytes += fi.Size()
		}
	}
	return wire.OK(out)
}
