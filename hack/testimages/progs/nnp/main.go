// Command nnp is the entrypoint of the nonewprivs test image. It is installed
// setuid root and prints the effective uid it runs with, so a caller can tell
// whether no_new_privs kept the setuid bit from taking effect:
// "Effective uid: 0" means it did not, the caller's uid means it did.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
