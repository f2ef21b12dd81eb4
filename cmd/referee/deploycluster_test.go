package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const clusterDir = "../../examples/cluster"

// composeFile is the part of a compose file the test reads.
type composeFile struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Volumes []string `yaml:"volumes"`
		Ports   []string `yaml:"ports"`
	} `yaml:"services"`
}

// TestDeployCluster checks the cluster example without a container engine:
// three NATS servers with JetStream routed to each other, two serve nodes
// and two workers whose command lines the real referee takes, each naming
// all three NATS servers and three replicas, serve nodes on volumes of
// their own, and a load balancer that keeps a client on its node and asks
// /readyz.
func TestDeployCluster(t *testing.T) {
	data, err := os.ReadFile(clusterDir + "/compose.yaml")
	must(t, err)
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	const natsURL = "nats://nats1:4222,nats://nats2:4222,nats://nats3:4222"
	const routes = "nats://nats1:6222,nats://nats2:6222,nats://nats3:6222"
	roles := map[string][]string{}
	for name, s := range c.Services {
		switch {
		case strings.HasPrefix(s.Image, "nats:"):
			roles["nats"] = append(roles["nats"], name)
			if !slices.Contains(s.Command, "--js") || argAfter(s.Command, "--routes") != routes || argAfter(s.Command, "--store_dir") == "" || len(s.Volumes) != 1 {
				t.Errorf("%s: %q: want JetStream on a volume, routed to the three servers", name, s.Command)
			}
		case strings.HasPrefix(s.Image, "haproxy:"):
			roles["lb"] = append(roles["lb"], name)
		case s.Image == "referee:local":
			if len(s.Command) == 0 {
				t.Fatalf("%s has no command", name)
			}
			roles[s.Command[0]] = append(roles[s.Command[0]], name)
			cmd, rest, err := newRootCmd(&app{}).Find(s.Command)
			if err != nil || cmd.Name() != s.Command[0] {
				t.Fatalf("%s: referee %q: %v", name, s.Command, err)
			}
			if err := cmd.ParseFlags(rest); err != nil || len(cmd.Flags().Args()) > 0 {
				t.Fatalf("%s: referee %s does not take %q: %v", name, cmd.Name(), rest, err)
			}
			if got := cmd.Flags().Lookup("nats").Value.String(); got != natsURL {
				t.Errorf("%s: --nats %q, want %q", name, got, natsURL)
			}
			if got := cmd.Flags().Lookup("nats-replicas").Value.String(); got != "3" {
				t.Errorf("%s: --nats-replicas %s, want 3 on a 3-server cluster", name, got)
			}
			if cmd.Name() == "serve" && (len(s.Volumes) != 1 || !strings.HasPrefix(s.Volumes[0], name+":")) {
				t.Errorf("%s: volumes %q, want one of its own for its spools", name, s.Volumes)
			}
		default:
			t.Errorf("service %s: unexpected image %q", name, s.Image)
		}
	}
	for role, want := range map[string]int{"nats": 3, "serve": 2, "worker": 2, "lb": 1} {
		if len(roles[role]) != want {
			t.Errorf("%d %s services (%q), want %d", len(roles[role]), role, roles[role], want)
		}
	}
	cfg := readFile(t, clusterDir+"/haproxy.cfg")
	for _, want := range []string{"balance source", "hash-type consistent", "option httpchk GET /readyz", "timeout tunnel", "server serve1 serve1:8080 check", "server serve2 serve2:8080 check"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	readme := readFile(t, "../../README.md")
	for _, want := range []string{"examples/cluster/compose.yaml", "referee worker", "--nats"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
}

// argAfter is the argument after flag in args, or "".
func argAfter(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}
