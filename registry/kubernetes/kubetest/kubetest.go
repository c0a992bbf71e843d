// Package kubetest runs a real Kubernetes API server on loopback for tests
// of programs that use the Kubernetes registry: kube-apiserver (built from
// the release pinned in internal/tools/kube-apiserver) in a child process,
// over an etcd embedded in the test process, with RBAC on, TLS, and keys
// made for the test. There is no kubelet, scheduler or controller manager:
// tests write Pods and EndpointSlices themselves (CreatePod, PutSlice), as
// the kubelet and the endpointslice controller would, and, since the API
// server refuses loopback addresses in EndpointSlices, give their loopback
// servers Pod IPs (PodIP) that their clients dial through Dial.
//
// The binary is found through the environment variable BinaryEnv, or else
// at internal/tools/kube-apiserver/bin/kube-apiserver in the repository.
// Without it, tests skip with a message that says how to build it; when the
// environment variable CI is "true" they fail instead.
package kubetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/freeport"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BinaryEnv names the environment variable that holds the path of the
// kube-apiserver binary.
const BinaryEnv = "GRAYLANE_KUBE_APISERVER"

// BuildHint says how to get the binary.
const BuildHint = "build it with internal/tools/kube-apiserver/build.sh from the repository root " +
	"(about 11 minutes the first time, cached after that), or set " + BinaryEnv + " to a kube-apiserver binary"

// Binary returns the path of the kube-apiserver binary: $GRAYLANE_KUBE_APISERVER,
// or internal/tools/kube-apiserver/bin/kube-apiserver in the nearest
// directory above the working directory that has one.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "internal", "tools", "kube-apiserver", "bin", "kube-apiserver")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no kube-apiserver binary: %s", BuildHint)
		}
		dir = parent
	}
}

// Unavailable tells a TestMain what to do without a binary: it returns
// the message to print and whether the tests must fail (in CI) rather than
// skip.
func Unavailable(err error) (msg string, fail bool) {
	fail = os.Getenv("CI") == "true"
	if fail {
		return fmt.Sprintf("kubetest: %v (CI=true: failing instead of skipping)", err), true
	}
	return fmt.Sprintf("kubetest: skipping the tests that need a Kubernetes API server: %v", err), false
}

// Options adjust a Server.
type Options struct {
	// Args are added to the API server's command line, after the
	// harness's own (a later flag wins).
	Args []string
}

// Server is a kube-apiserver and its etcd, both on loopback. It can be
// stopped and started again on the same port and data.
type Server struct {
	bin  string
	dir  string
	opts Options
	pki  *pki

	etcd    *embed.Etcd
	etcdURL url.URL
	port    int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File

	admin *kubernetes.Clientset
}

// readyTimeout bounds how long the API server may take to become ready.
const readyTimeout = 90 * time.Second

// Start starts etcd and the API server from the binary at bin, in a new
// directory under dir, and waits until the API server is ready. Close
// stops both.
func Start(bin, dir string, opts Options) (_ *Server, err error) {
	dir, err = os.MkdirTemp(dir, "kubetest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, opts: opts}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.pki, err = newPKI(dir); err != nil {
		return nil, fmt.Errorf("kubetest: keys: %w", err)
	}
	if err = s.startEtcd(); err != nil {
		return nil, fmt.Errorf("kubetest: etcd: %w", err)
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	s.admin, err = kubernetes.NewForConfig(s.AdminConfig())
	if err != nil {
		return nil, err
	}
	if err = s.Restart(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) startEtcd() error {
	client, err := freePort()
	if err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = "kubetest"
	cfg.Dir = filepath.Join(s.dir, "etcd")
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	s.etcdURL = url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(client)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peer)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{s.etcdURL}, []url.URL{s.etcdURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Kubernetes objects are written often in these tests; a larger
	// backend quota keeps a 10,000-pod test clear of the 2 GiB default.
	cfg.QuotaBackendBytes = 8 << 30
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return errors.New("not ready within 30s")
	}
	s.etcd = e
	return nil
}

// CompactEtcd compacts etcd's history up to its current revision, so that
// a watch from an older resource version fails with 410 Gone (when the API
// server reads etcd directly: Options.Args "--watch-cache=false").
func (s *Server) CompactEtcd(ctx context.Context) (revision int64, err error) {
	r, err := s.etcd.Server.Range(ctx, &etcdserverpb.RangeRequest{Key: []byte("compact-probe")})
	if err != nil {
		return 0, err
	}
	rev := r.Header.Revision
	_, err = s.etcd.Server.Compact(ctx, &etcdserverpb.CompactionRequest{Revision: rev, Physical: true})
	return rev, err
}

// Restart starts the API server (again, after Stop) on the same port and
// waits until it is ready.
func (s *Server) Restart() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("kubetest: the API server is running")
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	args := []string{
		"--etcd-servers=" + s.etcdURL.String(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(s.port),
		"--cert-dir=" + filepath.Join(s.dir, "certs"),
		"--tls-cert-file=" + s.pki.certFile,
		"--tls-private-key-file=" + s.pki.keyFile,
		"--client-ca-file=" + s.pki.caFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + s.pki.saPub,
		"--service-account-signing-key-file=" + s.pki.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// Nothing runs on this "node": the API server must not publish
		// itself as the endpoints of the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--authorization-mode=RBAC",
		// The tests write thousands of objects as fast as they can.
		"--enable-priority-and-fairness=false",
		"--max-requests-inflight=2000",
		"--max-mutating-requests-inflight=1000",
		"--profiling=false",
		"--v=0",
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		s.mu.Unlock()
		return fmt.Errorf("kubetest: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(done)
	}()
	s.cmd, s.done, s.log = cmd, done, log
	s.mu.Unlock()
	if err := s.awaitReady(done); err != nil {
		s.Stop()
		return fmt.Errorf("kubetest: %w\n%s", err, s.LogTail(4096))
	}
	return nil
}

// awaitReady polls /readyz (there is nothing to await: the API server
// tells readiness only when asked), then waits for the default namespace.
func (s *Server) awaitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = s.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("the API server exited")
		case <-ctx.Done():
			return fmt.Errorf("the API server is not ready within %v: %v", readyTimeout, last)
		case <-tick.C:
		}
	}
}

func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, err := s.admin.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %v %s", err, bytes.TrimSpace(body))
	}
	_, err = s.admin.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
	return err
}

// Stop kills the API server, as a crash would, and waits until it has
// exited. etcd keeps running. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Close stops the API server and etcd and removes their data.
func (s *Server) Close() {
	s.Stop()
	if s.etcd != nil {
		s.etcd.Close()
		s.etcd = nil
	}
	if s.admin != nil {
		s.admin.CoreV1().RESTClient().(*rest.RESTClient).Client.CloseIdleConnections()
	}
	os.RemoveAll(s.dir)
}

// LogTail returns the last n bytes of the API server's log.
func (s *Server) LogTail(n int64) string {
	f, err := os.Open(filepath.Join(s.dir, "kube-apiserver.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Host is the API server's URL.
func (s *Server) Host() string { return "https://127.0.0.1:" + strconv.Itoa(s.port) }

// CA is the PEM certificate of the CA that signed the serving certificate.
func (s *Server) CA() []byte { return s.pki.caPEM }

// AdminConfig returns a client configuration of a cluster administrator
// (group system:masters), with no client-side rate limit.
func (s *Server) AdminConfig() *rest.Config {
	return &rest.Config{
		Host: s.Host(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: s.pki.caPEM, CertData: s.pki.adminCert, KeyData: s.pki.adminKey,
		},
		QPS: -1, Burst: -1,
		Timeout: 30 * time.Second,
	}
}

// Admin returns a clientset of AdminConfig.
func (s *Server) Admin() *kubernetes.Clientset { return s.admin }

// Namespace creates a namespace named after prefix, with the default
// ServiceAccount that the controller manager would create (Pods cannot be
// created without it), and returns its name.
func (s *Server) Namespace(ctx context.Context, prefix string) (string, error) {
	ns, err := s.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	_, err = s.admin.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	return ns.Name, nil
}

// ServiceAccountConfig returns a client configuration that authenticates as
// the ServiceAccount name of namespace ns (created if need be), with a
// token from the TokenRequest API, as a pod running under that account
// would.
func (s *Server) ServiceAccountConfig(ctx context.Context, ns, name string) (*rest.Config, error) {
	_, err := s.admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	expiry := int64(3600)
	tr, err := s.admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            s.Host(),
		TLSClientConfig: rest.TLSClientConfig{CAData: s.pki.caPEM},
		BearerToken:     tr.Status.Token,
		QPS:             -1, Burst: -1,
	}, nil
}

// Kubeconfig writes a kubeconfig file for cfg (a CA and a bearer token, or
// a client certificate) and returns its path.
func (s *Server) Kubeconfig(cfg *rest.Config, name string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n",
		cfg.Host, b64(cfg.CAData))
	fmt.Fprintf(&b, "users:\n- name: test\n  user:\n")
	if cfg.BearerToken != "" {
		fmt.Fprintf(&b, "    token: %s\n", cfg.BearerToken)
	} else {
		fmt.Fprintf(&b, "    client-certificate-data: %s\n    client-key-data: %s\n", b64(cfg.CertData), b64(cfg.KeyData))
	}
	fmt.Fprintf(&b, "contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n")
	p := filepath.Join(s.dir, name)
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

func freePort() (int, error) { return freeport.Port() }

// Require returns the binary's path, or skips tb (fails it when CI=true)
// with a message that says how to build it.
func Require(tb testing.TB) string {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		msg, fail := Unavailable(err)
		if fail {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return bin
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
