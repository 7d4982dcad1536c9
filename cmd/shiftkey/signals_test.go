package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/config"
)

// mainChildEnv makes the test binary run main with its value as arguments.
const mainChildEnv = "SHIFTKEY_TEST_MAIN"

// startMain runs shiftkey with args (a command line) in a child process
// with env added to the test's environment; its output goes to the file
// logPath, shown if the test fails. The child is killed when the test ends;
// exited reports how it ended.
func startMain(t *testing.T, args string, env ...map[string]string) (cmd *exec.Cmd, exited <-chan error, logPath string) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainChildEnv+"="+args)
	for _, e := range env {
		for k, v := range e {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	logPath = filepath.Join(t.TempDir(), "child.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("child log:\n%s", b)
		}
	})
	return cmd, done, logPath
}

// runMainChild runs main (and exits) in a child started with mainChildEnv.
func runMainChild() {
	if a := os.Getenv(mainChildEnv); a != "" {
		os.Args = append([]string{"shiftkey"}, strings.Fields(a)...)
		main()
		os.Exit(0)
	}
}

const newbieUser = `
    - name: newbie
      access_keys: [{id: "${NEWBIE_KEY_ID}", secret: "${NEWBIE_SECRET}"}]
      policies:
        creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"}]}'
`

var newbieEnv = map[string]string{"NEWBIE_KEY_ID": "AKIANEWBIEKEY0000017", "NEWBIE_SECRET": "newbie-secret-0123456789abcdef"}

func rsClient(api, keyID, secret string) *redshift.Client {
	return redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + api), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret})})
}

// signedRequest is a GetClusterCredentials request for ops, signed, as
// bytes on the wire.
func signedRequest(t *testing.T, api, dbUser string) []byte {
	t.Helper()
	body := "Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=opsc&AutoCreate=true&DbUser=" + dbUser
	req, err := http.NewRequest("POST", "http://"+api+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: opsEnv["OPS_KEY_ID"], SecretAccessKey: opsEnv["OPS_SECRET"]},
		req, hex.EncodeToString(sum[:]), "redshift", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func refusesConnections(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// serve as its own process, driven by signals. SIGHUP: a user added to the
// file works, an open session goes on, and the audit file renamed away is
// written anew. SIGTERM: the listeners close at once, an API call in
// flight is answered, an open session runs until shutdown_grace and is
// then cut, and the process exits 0.
func TestSignalsReloadAndDrain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.log")
	yaml := func(users string) string {
		return opsYAML(dir, "audit: {file: "+auditPath+"}\nlimits: {shutdown_grace: 4s, unready_delay: 0s}") + users
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml("")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, exited, logPath := startMain(t, "serve --config "+cfgPath, opsEnv, newbieEnv)
	// The child listens on ports of its choosing and logs them.
	var api, gw, admin string
	waitUntil(t, 60*time.Second, "serve logs its listeners", func() bool {
		b, _ := os.ReadFile(logPath)
		for _, line := range strings.Split(string(b), "\n") {
			var r struct{ Msg, API, Admin, Listen string }
			if json.Unmarshal([]byte(line), &r) != nil {
				continue
			}
			switch r.Msg {
			case "gateway listening":
				gw = r.Listen
			case "shiftkey serving":
				api, admin = strings.TrimPrefix(r.API, "http://"), strings.TrimPrefix(r.Admin, "http://")
			}
		}
		return api != "" && gw != ""
	})
	waitUntil(t, 10*time.Second, "serve ready", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// serve set GOMAXPROCS (limits.procs) before it started: one P more
	// than the CPUs at the default scram_iterations.
	wantProcs := config.Limits{}.GoMaxProcs(0)
	if wantProcs == 0 { // GOMAXPROCS in the environment
		wantProcs = config.CPUs()
	}
	if fams, _ := scrape(t, "http://"+admin); sample(fams, "go_sched_gomaxprocs_threads", nil) != float64(wantProcs) {
		t.Errorf("serve runs GOMAXPROCS %v, want %d", sample(fams, "go_sched_gomaxprocs_threads", nil), wantProcs)
	}

	dbUser := fresh("sigops")
	out, err := rsClient(api, opsEnv["OPS_KEY_ID"], opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("opsc"), DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pgx.ParseConfig("host=127.0.0.1 port=" + strings.Split(gw, ":")[1] + " dbname=dev sslmode=disable connect_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	pc.User, pc.Password = aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	alive := func() error { _, err := conn.Exec(ctx, "SELECT 1"); return err }
	// A second session of another login, which its client ends within the
	// grace period: closed, not cut by the shutdown.
	quitter := fresh("sigquit")
	out2, err := rsClient(api, opsEnv["OPS_KEY_ID"], opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("opsc"), DbUser: aws.String(quitter), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	pc2 := pc.Copy()
	pc2.User, pc2.Password = aws.ToString(out2.DbUser), aws.ToString(out2.DbPassword)
	conn2, err := pgx.ConnectConfig(ctx, pc2)
	if err != nil {
		t.Fatal(err)
	}
	newbie := rsClient(api, newbieEnv["NEWBIE_KEY_ID"], newbieEnv["NEWBIE_SECRET"])
	newbieCall := func() error {
		_, err := newbie.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"), DbUser: aws.String("newbie")})
		return err
	}
	if err := newbieCall(); apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("newbie before the reload: %v, want InvalidClientTokenId", err)
	}

	// SIGHUP with newbie in the file and the audit log rotated away.
	if err := os.WriteFile(cfgPath, []byte(yaml(newbieUser)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "newbie's key works after SIGHUP", func() bool { return newbieCall() == nil })
	if err := alive(); err != nil {
		t.Fatalf("session after SIGHUP: %v", err)
	}
	newbieARN := `"arn":"arn:aws:iam::000000000000:user/newbie"`
	waitUntil(t, 10*time.Second, "the reopened audit.log records newbie's call", func() bool {
		b, err := os.ReadFile(auditPath)
		return err == nil && strings.Contains(string(b), newbieARN)
	})
	if old, _ := os.ReadFile(auditPath + ".1"); !strings.Contains(string(old), `"eventName":"GatewayLogin"`) || strings.Contains(string(old), newbieARN) {
		t.Errorf("rotated audit.log.1 should hold the records before the reload only:\n%s", old)
	}

	// SIGTERM with an API call in flight and a session open. The call's
	// headers ask for 100 Continue, which the server sends once its
	// handler reads the body: the call is then surely in flight (a
	// connection the server had not yet accepted would be closed with the
	// listener, as the kernel's backlog is). Its body follows the SIGTERM.
	req := signedRequest(t, api, fresh("inflight"))
	head, reqBody, _ := bytes.Cut(req, []byte("\r\n\r\n"))
	apiConn, err := net.Dial("tcp", api)
	if err != nil {
		t.Fatal(err)
	}
	defer apiConn.Close()
	if _, err := apiConn.Write(append(slices.Clip(head), "\r\nExpect: 100-continue\r\n\r\n"...)); err != nil { // Clip: head shares reqBody's array
		t.Fatal(err)
	}
	apiConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(apiConn)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("waiting for 100 Continue: %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the empty line ending the interim response
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitUntil(t, 5*time.Second, "API and gateway stop accepting", func() bool { return refusesConnections(api) && refusesConnections(gw) })
	if err := alive(); err != nil {
		t.Fatalf("session right after SIGTERM, within the grace period: %v", err)
	}
	conn2.Close(ctx)
	if _, err := apiConn.Write(reqBody); err != nil {
		t.Fatal(err)
	}
	apiConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight call after SIGTERM: %v", err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(body.String(), "<DbPassword>") {
		t.Fatalf("in-flight call after SIGTERM: %d %s", resp.StatusCode, body.String())
	}
	waitUntil(t, 15*time.Second, "session cut at the end of shutdown_grace", func() bool { return alive() != nil })
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	b, _ := os.ReadFile(auditPath)
	endReason := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct {
			EventName           string
			RequestParameters   struct{ LoginName string }
			ResponseElements    struct{ DbUser string }
			AdditionalEventData struct{ EndReason string }
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.AdditionalEventData.EndReason != "" {
			endReason[r.ResponseElements.DbUser] = r.AdditionalEventData.EndReason
		}
	}
	if endReason[dbUser] != "gateway_shutdown" || endReason[quitter] != "closed" {
		t.Errorf("sessions' end reasons %v: want %s cut by the shutdown, %s closed by its client\n%s", endReason, dbUser, quitter, b)
	}
}
