package provision_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

const secret = "Sup3rS3cretPw"

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://app:" + secret + "@db:5432/app?sslmode=require", "postgres://app:xxxxx@db:5432/app?sslmode=require"},
		{"postgresql://app:" + secret + "@db/app", "postgresql://app:xxxxx@db/app"},
		{"postgres://app@db/app", "postgres://app@db/app"},
		{"postgres://db/app?user=u&password=" + secret + "&sslmode=disable", "postgres://db/app?user=u&password=xxxxx&sslmode=disable"},
		{"host=db user=app password=" + secret + " dbname=app", "host=db user=app password=xxxxx dbname=app"},
		{"host=db password = '" + secret + " with '' quote' dbname=app", "host=db password = xxxxx dbname=app"},
		{"host=db PASSWORD='a\\'" + secret + "' x=1", "host=db PASSWORD=xxxxx x=1"},
		{`failed to connect to "postgres://u:` + secret + `@h/d": refused`, `failed to connect to "postgres://u:xxxxx@h/d": refused`},
		{"no secrets here", "no secrets here"},
		{"", ""},
	}
	for _, c := range cases {
		got := provision.Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if strings.Contains(got, secret) {
			t.Errorf("Redact(%q) leaks the password: %q", c.in, got)
		}
	}
}

func TestDSNNeverPrintsPassword(t *testing.T) {
	d := provision.DSN("postgres://app:" + secret + "@db/app")
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("connecting", "dsn", d)
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%v %s", d, d), d.String(), logs.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("password leaked: %s", s)
		}
	}
	if d.Secret() != "postgres://app:"+secret+"@db/app" {
		t.Errorf("Secret() lost the password: %q", d.Secret())
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]provision.Mode{"": provision.ModeAuto, "auto": provision.ModeAuto, "LITE": provision.ModeLite, " pro ": provision.ModePro} {
		got, err := provision.ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := provision.ParseMode("cloud"); err == nil || !strings.Contains(status.HintOf(err), "auto, lite or pro") {
		t.Errorf("ParseMode(cloud) = %v; want an error listing the modes", err)
	}
}

func TestResolve(t *testing.T) {
	cases := []struct {
		mode provision.Mode
		url  string
		want provision.Mode
		err  bool
	}{
		{provision.ModeAuto, "", provision.ModeLite, false},
		{provision.ModeAuto, "postgres://x", provision.ModePro, false},
		{provision.ModeLite, "postgres://x", provision.ModeLite, false},
		{provision.ModePro, "", "", true},
		{provision.ModePro, "postgres://x", provision.ModePro, false},
	}
	for _, c := range cases {
		got, err := c.mode.Resolve(c.url)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%q.Resolve(%q) = %q, %v", c.mode, c.url, got, err)
		}
	}
}

func TestSplitPassword(t *testing.T) {
	cases := []struct{ in, without, pw string }{
		{"postgres://app:" + secret + "@db:5432/app?sslmode=require", "postgres://app@db:5432/app?sslmode=require", secret},
		{"postgres://app:p%40ss@db/app", "postgres://app@db/app", "p@ss"},
		{"postgres://app@db/app", "postgres://app@db/app", ""},
		{"postgres://db/app?password=" + secret + "&sslmode=disable", "postgres://db/app?sslmode=disable", secret},
		{"postgres://db/app?sslmode=disable&password=" + secret, "postgres://db/app?sslmode=disable", secret},
		{"host=db password=" + secret + " dbname=app", "host=db  dbname=app", secret},
		{"host=db password='it''s \\'x' dbname=app", "host=db  dbname=app", "it's 'x"},
	}
	for _, c := range cases {
		without, pw := provision.SplitPassword(c.in)
		if without != c.without || pw != c.pw {
			t.Errorf("SplitPassword(%q) = %q, %q; want %q, %q", c.in, without, pw, c.without, c.pw)
		}
	}
}
