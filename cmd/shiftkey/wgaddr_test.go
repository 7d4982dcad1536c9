package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// Found in an operator-surface review: dev took only the port of
// --workgroup-addr and opened default-workgroup's gateway on
// --gateway-addr's host. An operator who opened dev-cluster's gateway to
// the network (--gateway-addr 0.0.0.0:5439) and left the workgroup on its
// loopback default (127.0.0.1:5440) had default-workgroup's gateway open on
// every interface too. It now listens where --workgroup-addr says.
func TestDevWorkgroupListensOnItsOwnHost(t *testing.T) {
	var external net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			external = ipn.IP
			break
		}
	}
	if external == nil {
		t.Skip("no non-loopback IPv4 address to try")
	}
	dir, err := tempDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	d := newTestDev(dir)
	d.GatewayAddr, d.WorkgroupAddr = "0.0.0.0:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer d.Close()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := d.Store.Workgroup(ctx, "default-workgroup")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(w.Endpoint.Port)
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 5*time.Second); err != nil {
		t.Fatalf("default-workgroup's gateway on loopback: %v", err)
	} else {
		c.Close()
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(external.String(), port), 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("default-workgroup's gateway, asked for on 127.0.0.1, answers on %s:%s", external, port)
	}
}
