// Command lbload is scripts/bench/lb.sh's helper:
//
//	lbload serve -name NAME -listen ADDR
//	    a tiny HTTP server answering NAME to every request (a backend);
//	lbload apply -netns PATH -set NAME -front IP:PORT -backport PORT
//	    -backends name=IP,... [-mode MODE] [-network CIDR] [-bridge DEV]
//	    programs gale's load balancer table (pkg/lb) in the namespace;
//	lbload delete -netns PATH -set NAME
//	    removes it.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/galevm/gale/pkg/lb"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lbload serve|apply|delete [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "apply":
		err = apply(os.Args[2:], false)
	case "delete":
		err = apply(os.Args[2:], true)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbload:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "backend", "the answer")
	listen := fs.String("listen", ":8080", "listen address")
	_ = fs.Parse(args)
	body := []byte(*name + "\n")
	srv := &http.Server{
		Addr: *listen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return srv.ListenAndServe()
}

func apply(args []string, del bool) error {
	fs := flag.NewFlagSet("apply", flag.ExitOnError)
	nsPath := fs.String("netns", "", "network namespace file (/run/netns/NAME); empty: the current one")
	set := fs.String("set", "bench", "set name")
	front := fs.String("front", "", "frontend IP:PORT")
	backPort := fs.Uint("backport", 8080, "backend port")
	backends := fs.String("backends", "", "name=IP,name=IP,...")
	mode := fs.String("mode", string(lb.ModeRoundRobin), "hash, sourceip or roundrobin")
	network := fs.String("network", "", "the backends' network, host address/bits (hairpin)")
	bridge := fs.String("bridge", "", "the backends' bridge")
	_ = fs.Parse(args)

	var opts []lb.Option
	if *nsPath != "" {
		fd, err := unix.Open(*nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", *nsPath, err)
		}
		defer unix.Close(fd)
		opts = append(opts, lb.WithNetNS(fd))
	}
	m, err := lb.New(opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	if del {
		return m.Delete(*set)
	}

	fa, err := netip.ParseAddrPort(*front)
	if err != nil {
		return fmt.Errorf("-front: %w", err)
	}
	c := lb.Config{
		Set:    *set,
		Rules:  []lb.Rule{{Proto: lb.ProtoTCP, FrontAddr: fa.Addr(), FrontPort: fa.Port(), BackPort: uint16(*backPort), Mode: lb.Mode(*mode)}},
		Bridge: *bridge,
	}
	if *network != "" {
		if c.Network, err = netip.ParsePrefix(*network); err != nil {
			return fmt.Errorf("-network: %w", err)
		}
	}
	for _, b := range strings.Split(*backends, ",") {
		name, addr, ok := strings.Cut(b, "=")
		if !ok {
			return fmt.Errorf("-backends: %q is not name=IP", b)
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return fmt.Errorf("-backends: %w", err)
		}
		c.Backends = append(c.Backends, lb.Backend{Name: name, Addr: a})
	}
	return m.Apply(c)
}
