package supervisor

import (
	"slices"
	"testing"
	"time"

	"github.com/nsfd/nsfd/config"
)

func TestConfigItemsMaskSecrets(t *testing.T) {
	d := &config.Daemon{
		File: "/etc/nsfd/kv.ini", Command: []string{"/bin/kv", "--dir", "x"},
		Listeners:  []config.Listen{{Proto: "tcp", Addr: "127.0.0.1:7003"}},
		MinServers: 2, MaxServers: 4, GracefulTimeout: 10 * time.Second, User: "nobody",
		Env: []string{"GREETING=hi", "DB_PASSWORD=hunter2", "api_token=t", "SECRET_KEY=k",
			"DATABASE_URL=postgres://app:pw@db/app", "UPSTREAM=http://example.com/x"},
	}
	got := map[string]string{}
	var keys []string
	for _, it := range configItems(d) {
		got[it.Key] = it.Value
		keys = append(keys, it.Key)
	}
	for k, want := range map[string]string{
		"command": "/bin/kv --dir x", "port": "127.0.0.1:7003/tcp", "user": "nobody", "graceful_timeout": "10s",
		"env.GREETING": "hi", "env.DB_PASSWORD": Masked, "env.api_token": Masked, "env.SECRET_KEY": Masked,
		"env.DATABASE_URL": "postgres://app:xxxxx@db/app", "env.UPSTREAM": "http://example.com/x",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if slices.Contains(keys, "chroot") || slices.Contains(keys, "max_requests") {
		t.Errorf("unset keys shown: %q", keys)
	}
	for _, v := range got {
		if v == "hunter2" || v == "t" || v == "k" {
			t.Fatalf("a secret is shown: %v", got)
		}
	}
}
