// Command referee carries fencing phrases from the strip to a referee
// service and brings the verdict back. Run "referee --help" for the
// subcommands.
package main

import "os"

func main() {
	os.Exit(execute(os.Args[1:], newStreams(os.Stdin, os.Stdout, os.Stderr)))
}
