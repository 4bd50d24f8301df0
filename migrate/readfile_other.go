//go:build !unix

package migrate

import "os"

func readOSFile(path string) ([]byte, error) { return os.ReadFile(path) }
