// CoreDNS with the plugins a cluster's DNS needs and no others: the node's
// Services and pods by name (kubernetes), on the node's address (bind),
// readiness (ready), errors logged, and answers cached.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

// In the order the plugins handle a query.
var directives = []string{"bind", "errors", "ready", "cache", "kubernetes"}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
