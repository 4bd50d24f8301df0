// Command child is the process of proctest's own tests: it prints its
// arguments and $CHILD_SAY, then exits with the code of its first
// argument, or sleeps until it is killed when there is none.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	fmt.Println(os.Args[1:], os.Getenv("CHILD_SAY"))
	fmt.Fprintln(os.Stderr, "to stderr")
	if len(os.Args) < 2 {
		time.Sleep(time.Hour)
	}
	code, _ := strconv.Atoi(os.Args[1])
	os.Exit(code)
}
