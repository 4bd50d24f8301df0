package testutil_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/testutil"
)

func TestBufferKeepsEveryWrite(t *testing.T) {
	var b testutil.Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "%d\n", i)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"a.sql": "SELECT 1;", "sub/run.sh*": "#!/bin/sh\n"})
	for name, want := range map[string]os.FileMode{"a.sql": 0o644, "sub/run.sh": 0o755} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
}

func TestEventually(t *testing.T) {
	n := 0
	testutil.Eventually(t, "the third call", time.Second, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
}

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, r.URL.Path)
	}))
	defer srv.Close()
	if code, body, err := testutil.Get(srv.URL + "/x"); code != http.StatusTeapot || body != "/x" || err != nil {
		t.Errorf("Get = %d %q %v", code, body, err)
	}
	srv.Close()
	if _, _, err := testutil.Get(srv.URL); err == nil {
		t.Error("Get of a closed server: no error")
	}
}
