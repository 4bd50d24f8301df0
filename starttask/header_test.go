package starttask_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/starttask"
)

func TestParseHeader(t *testing.T) {
	cases := []struct {
		name, src, marker string
		want              starttask.Header
	}{
		{"none", "INSERT INTO t VALUES (1);\n", "--", starttask.Header{}},
		{"sql key=value", "-- seeds the demo users\n-- uplink: policy=once env=dev,test timeout=30s\nINSERT INTO t VALUES (1);\n", "--",
			starttask.Header{Policy: starttask.Once, Env: []string{"dev", "test"}, Timeout: 30 * time.Second, Line: 2}},
		{"bare words, two lines", "\n-- uplink: always best-effort\n--uplink: env=prod\n", "--",
			starttask.Header{Policy: starttask.Always, OnFailure: starttask.BestEffort, Env: []string{"prod"}, Line: 2}},
		{"script after #!", "#!/bin/sh\n# uplink: policy=on-change version=3 on-failure=required\necho hi\n", "#",
			starttask.Header{Policy: starttask.OnChange, Version: "3", OnFailure: starttask.Required, Line: 2}},
		{"fresh", "-- uplink: fresh\n", "--", starttask.Header{Fresh: true, Line: 1}},
		{"below the code means nothing", "SELECT 1;\n-- uplink: policy=bogus\n", "--", starttask.Header{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := starttask.ParseHeader("f", []byte(c.src), c.marker)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, c.want) {
				t.Errorf("got %+v\nwant %+v", h, c.want)
			}
		})
	}
}

func TestParseHeaderMistakes(t *testing.T) {
	cases := []struct {
		src  string
		want []string // in the message: file:line, what, and the fix
	}{
		{"-- uplink: policy=onse\n", []string{"tasks/a.sql:1:", `unknown policy "onse"`, "policy=on-change"}},
		{"-- note\n-- uplink: env=dev,staging\n", []string{"tasks/a.sql:2:", `unknown env "staging"`, "dev, test or prod"}},
		{"-- uplink: onse\n", []string{`unknown word "onse"`, "policy=always|once|on-change"}},
		{"-- uplink: once policy=always\n", []string{"policy given twice", "keep one"}},
		{"-- uplink: timeout=soon\n", []string{`timeout "soon"`, "30s"}},
		{"-- uplink: timeout=-1s\n", []string{"not a positive duration"}},
		{"-- uplink: on-failure=maybe\n", []string{`unknown on-failure "maybe"`, "best-effort"}},
		{"-- uplink: fresh=perhaps\n", []string{`fresh="perhaps"`}},
		{"-- uplink: version=\n", []string{"empty version"}},
	}
	for _, c := range cases {
		_, err := starttask.ParseHeader("tasks/a.sql", []byte(c.src), "--")
		if err == nil {
			t.Errorf("%q: no error", c.src)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", c.src, err, w)
			}
		}
	}
}
