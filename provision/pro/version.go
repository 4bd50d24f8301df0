package pro

import (
	"fmt"

	"github.com/uplinkhq/uplink/status"
)

// MinServerVersion is the oldest PostgreSQL Uplink runs on, in the form of
// server_version_num: 13.0.
const MinServerVersion = 130000

// formatVersion turns server_version_num into the version people know:
// 150018 is 15.18; before 10, three parts: 90624 is 9.6.24.
func formatVersion(num int) string {
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000)
	}
	return fmt.Sprintf("%d.%d.%d", num/10000, num/100%100, num%100)
}

// checkVersion refuses a server older than MinServerVersion. Waiting would
// not help: only an upgrade or another server does.
func checkVersion(num int, target string) *status.ActionError {
	if num >= MinServerVersion {
		return nil
	}
	return &status.ActionError{
		Problem: fmt.Sprintf("PostgreSQL %s at %s is older than 13", formatVersion(num), target),
		Hint:    "upgrade the server or point DATABASE_URL at a newer one",
	}
}
