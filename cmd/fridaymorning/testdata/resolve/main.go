// Command resolve prints the addresses Docker's embedded DNS (127.0.0.11) gives for each name, one line
// per name: "NAME ADDR ADDR…" (sorted), or "NAME -" when there are none. The multi-node tests run it in
// a container's network namespace (nsenter --net) to see what its neighbours see.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, "127.0.0.11:53")
	}}
	for _, name := range os.Args[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		addrs, err := r.LookupHost(ctx, name)
		cancel()
		if err != nil || len(addrs) == 0 {
			fmt.Println(name, "-")
			continue
		}
		sort.Strings(addrs)
		fmt.Println(name, strings.Join(addrs, " "))
	}
}
