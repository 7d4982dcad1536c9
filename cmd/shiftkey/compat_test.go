package main

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// TestCompatClients runs Debian's AWS CLI and python3-boto3 (a second,
// independent client family) against the running dev instance: see
// tests/compat. .ci/run installs them; elsewhere the test skips without them.
func TestCompatClients(t *testing.T) {
	need := func(what string, ok bool) {
		if ok {
			return
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (apt-get install -y awscli python3-boto3 postgresql-client)", what)
		}
		t.Skipf("%s is not installed", what)
	}
	_, err := os.Stat("/usr/bin/aws")
	need("Debian's awscli (/usr/bin/aws)", err == nil)
	need("python3-boto3", exec.Command("/usr/bin/python3", "-c", "import boto3").Run() == nil)
	_, err = exec.LookPath("psql")
	need("psql", err == nil)

	wg, err := dev.Store.Workgroup(t.Context(), DevWorkgroup)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+dev.AccessKey.ID, "AWS_SECRET_ACCESS_KEY="+dev.AccessKey.Secret, "AWS_SESSION_TOKEN=",
		"AWS_REGION="+DevRegion, "AWS_DEFAULT_REGION="+DevRegion, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"SHIFTKEY_ENDPOINT="+dev.APIURL, "AWS=/usr/bin/aws",
		"PGHOST="+dev.Gateway.Address, "PGPORT="+strconv.Itoa(dev.Gateway.Port), "WG_PORT="+strconv.Itoa(wg.Endpoint.Port),
		"PYTHONPATH=", "PYTHONNOUSERSITE=1")
	for _, cmd := range [][]string{{"/usr/bin/python3", "../../tests/compat/compat.py"}, {"bash", "../../tests/compat/compat.sh"}} {
		c := exec.Command(cmd[0], cmd[1:]...)
		c.Env = env
		out, err := c.CombinedOutput()
		t.Logf("%s:\n%s", cmd[1], out)
		if err != nil {
			t.Fatalf("%s: %v", cmd[1], err)
		}
	}
}
