// CoreDNS for tests/node, built with only the plugins the node's Corefile uses.
//
// The stock binary (github.com/coredns/coredns) links every plugin, cloud SDKs included
// (route53, azure, clouddns, ...): minutes more to build for nothing we use. Here the
// plugins are imported one by one and dnsserver.Directives, the plugin chain order, is cut
// down to them, keeping CoreDNS's own relative order (its plugin.cfg).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	dnsserver.Directives = []string{
		"bind",
		"ready",
		"health",
		"errors",
		"log",
		"cache",
		"kubernetes",
		"loop",
		"forward",
	}
	coremain.Run()
}
