// Command sockmap is the experiment behind the gateway's choice of a
// user-space relay: a bare TCP proxy whose bytes move entirely in the kernel,
// through a BPF socket map (SK_SKB stream parser + verdict redirecting each
// socket's input to its peer's output). It does no authentication of its own
// (the client's SCRAM exchange passes through to PostgreSQL) and no framing,
// so it is an upper bound on what a socket-map relay could save, not a
// gateway. Needs root (or CAP_BPF + CAP_NET_ADMIN) and a TCP backend:
// unix sockets cannot be added to a map with a stream parser (EOPNOTSUPP).
//
//	go run . -l 127.0.0.1:27500 -b 127.0.0.1:25432 [-strp=false]
//
// See ../README.md ("Kernel socket map") for how it was measured.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

const slots = 4096

func main() {
	listen := flag.String("l", "127.0.0.1:27500", "listen address")
	backend := flag.String("b", "127.0.0.1:25432", "PostgreSQL TCP address")
	strp := flag.Bool("strp", true, "attach a stream parser (false: SK_SKB verdict only, kernel 5.13+)")
	flag.Parse()

	// Sockets sit in pairs: client at 2k, backend at 2k+1. peers maps a
	// socket's cookie to its peer's slot, which the verdict redirects to.
	sockmap, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 4, MaxEntries: slots})
	if err != nil {
		log.Fatal(err)
	}
	peers, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: slots})
	if err != nil {
		log.Fatal(err)
	}
	verdict := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, peers.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R3, asm.R0, 0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, sockmap.FD()),
		asm.Mov.Imm(asm.R4, 0), // to the peer's output
		asm.FnSkRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("drop"), // SK_DROP
		asm.Return(),
	}
	verdictAttach := ebpf.AttachSkSKBVerdict
	if *strp {
		verdictAttach = ebpf.AttachSkSKBStreamVerdict
		// Every chunk is one "message" (its whole length): no framing.
		attach(sockmap, ebpf.AttachSkSKBStreamParser, asm.Instructions{asm.LoadMem(asm.R0, asm.R1, 0, asm.Word), asm.Return()})
	}
	attach(sockmap, verdictAttach, verdict)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	next := uint32(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		mu.Lock()
		slot := next
		next = (next + 2) % slots
		mu.Unlock()
		go proxy(c.(*net.TCPConn), *backend, sockmap, peers, slot)
	}
}

func attach(m *ebpf.Map, at ebpf.AttachType, ins asm.Instructions) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SkSKB, AttachType: at, License: "GPL", Instructions: ins})
	if err != nil {
		log.Fatal(err)
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: m.FD(), Program: p, Attach: at}); err != nil {
		log.Fatal(err)
	}
}

// proxy puts the client and a new backend connection in the map and waits
// for the client to hang up. The startup packet may already sit in the
// client's queue; the kernel runs the verdict on it when the socket joins.
func proxy(c *net.TCPConn, backend string, sockmap, peers *ebpf.Map, slot uint32) {
	defer c.Close()
	d, err := net.Dial("tcp", backend)
	if err != nil {
		log.Print(err)
		return
	}
	b := d.(*net.TCPConn)
	defer b.Close()
	cf, err := c.File()
	if err != nil {
		log.Print(err)
		return
	}
	defer cf.Close()
	bf, err := b.File()
	if err != nil {
		log.Print(err)
		return
	}
	defer bf.Close()
	cc, _ := unix.GetsockoptUint64(int(cf.Fd()), unix.SOL_SOCKET, unix.SO_COOKIE)
	bc, _ := unix.GetsockoptUint64(int(bf.Fd()), unix.SOL_SOCKET, unix.SO_COOKIE)
	defer peers.Delete(cc)
	defer peers.Delete(bc)
	if err := peers.Put(cc, slot+1); err != nil {
		log.Print(err)
		return
	}
	if err := peers.Put(bc, slot); err != nil {
		log.Print(err)
		return
	}
	defer sockmap.Delete(slot)
	defer sockmap.Delete(slot + 1)
	if err := sockmap.Put(slot, uint32(cf.Fd())); err != nil {
		log.Print(err)
		return
	}
	if err := sockmap.Put(slot+1, uint32(bf.Fd())); err != nil {
		log.Print(err)
		return
	}
	// Redirected bytes never reach this read; the hang-up does.
	io.Copy(io.Discard, c)
}
