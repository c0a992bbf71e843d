package kubetest

import (
	"context"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The API server has no kubelet, scheduler or controller manager: these
// helpers write what they would.

// CreatePod creates a Pod as a Deployment's ReplicaSet would: one
// container, deleted at once when deleted (no kubelet to wait for). It
// stays Pending, unscheduled.
func CreatePod(ctx context.Context, c kubernetes.Interface, ns, name string, labels, annotations map[string]string) error {
	zero := int64(0)
	_, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
			TerminationGracePeriodSeconds: &zero,
		},
	}, metav1.CreateOptions{})
	return err
}

// Endpoint is one endpoint of an EndpointSlice, as the endpointslice
// controller writes it for a Pod.
type Endpoint struct {
	IP  string // the Pod IP: the API server refuses loopback addresses (see PodIP)
	Pod string // the Pod of targetRef; "" for none
	// The Pod's state: ready (the zero value), not ready, terminating
	// while still passing its readiness probe, or terminating and not.
	NotReady, Terminating, Stopped bool
}

// PutSlice writes (creates or replaces) the EndpointSlice name of service
// in namespace ns: its one port (named portName, "" for none) and eps.
func PutSlice(ctx context.Context, c kubernetes.Interface, ns, name, service, portName string, port int32, eps ...Endpoint) error {
	tcp := corev1.ProtocolTCP
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   "kubetest",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &tcp}},
		Endpoints:   []discoveryv1.Endpoint{},
	}
	for _, e := range eps {
		ready, serving, terminating := !e.NotReady && !e.Terminating && !e.Stopped, !e.NotReady && !e.Stopped, e.Terminating || e.Stopped
		x := discoveryv1.Endpoint{
			Addresses:  []string{e.IP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		}
		if e.Pod != "" {
			x.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.Pod}
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	slices := c.DiscoveryV1().EndpointSlices(ns)
	old, err := slices.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, s, metav1.CreateOptions{})
		return err
	case err != nil:
		return err
	}
	s.ResourceVersion = old.ResourceVersion
	_, err = slices.Update(ctx, s, metav1.UpdateOptions{})
	return err
}

// PodNet is where PodIP's addresses come from.
var PodNet = &net.IPNet{IP: net.IPv4(10, 244, 0, 0), Mask: net.CIDRMask(16, 32)}

// PodIP returns the n-th address of PodNet (n from 1 to 65,000). The API
// server refuses loopback addresses in EndpointSlices, so a test gives each
// loopback server a Pod IP of its own and has its clients dial it through
// Dial.
func PodIP(n int) string {
	return fmt.Sprintf("10.244.%d.%d", n/250%256, n%250+1)
}

// Dial dials addr on loopback if its host is in PodNet, keeping the port:
// the dialer of the clients of a test's servers (grpc.WithContextDialer,
// http.Transport.DialContext with network "tcp"). Other addresses are an
// error.
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !PodNet.Contains(ip) {
		return nil, fmt.Errorf("kubetest: %s is no test Pod IP (%v)", addr, PodNet)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
}
