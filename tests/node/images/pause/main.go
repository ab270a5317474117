// The pod sandbox ("pause") container, for a node that cannot pull registry.k8s.io/pause: it holds
// the pod's namespaces, reaps the zombies of a shared PID namespace, and exits on SIGINT/SIGTERM.
// Behaves like Kubernetes' pause.c; written anew in Go so it builds from the Go toolchain alone.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("pause: warning: not running as PID 1\n")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every exited child (orphans re-parented to PID 1).
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
