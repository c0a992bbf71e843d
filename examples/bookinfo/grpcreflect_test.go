package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/graylane/graylane/examples/bookinfo/app"
)

// reflectClient is what grpcurl does: it learns the services and their
// messages from the server's reflection service, with no generated code.
type reflectClient struct {
	t      *testing.T
	conn   *grpc.ClientConn
	stream rpb.ServerReflection_ServerReflectionInfoClient
}

func newReflectClient(t *testing.T, ctx context.Context, addr string) *reflectClient {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = stream.CloseSend()
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	})
	return &reflectClient{t: t, conn: conn, stream: stream}
}

func (c *reflectClient) ask(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
	c.t.Helper()
	require.NoError(c.t, c.stream.Send(req))
	resp, err := c.stream.Recv()
	require.NoError(c.t, err)
	require.Nil(c.t, resp.GetErrorResponse(), "reflection error")
	return resp
}

// list is `grpcurl list`.
func (c *reflectClient) list() []string {
	var out []string
	for _, s := range c.ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		out = append(out, s.GetName())
	}
	return out
}

// method finds a method by its full name, from the file descriptors the
// server sends.
func (c *reflectClient) method(service, name string) protoreflect.MethodDescriptor {
	c.t.Helper()
	resp := c.ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: service}})
	fds := &descriptorpb.FileDescriptorSet{}
	for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		require.NoError(c.t, proto.Unmarshal(b, fd))
		fds.File = append(fds.File, fd)
	}
	files, err := protodesc.NewFiles(fds)
	require.NoError(c.t, err)
	d, err := files.FindDescriptorByName(protoreflect.FullName(service))
	require.NoError(c.t, err)
	m := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
	require.NotNil(c.t, m)
	return m
}

// call is `grpcurl -d '{...}' -H header ADDR service/method`, with
// dynamic messages built from the reflected descriptors.
func (c *reflectClient) call(ctx context.Context, m protoreflect.MethodDescriptor, fields map[string]string, md ...string) *dynamicpb.Message {
	c.t.Helper()
	req := dynamicpb.NewMessage(m.Input())
	for k, v := range fields {
		req.Set(m.Input().Fields().ByName(protoreflect.Name(k)), protoreflect.ValueOfString(v))
	}
	resp := dynamicpb.NewMessage(m.Output())
	ctx = metadata.AppendToOutgoingContext(ctx, md...)
	require.NoError(c.t, c.conn.Invoke(ctx, "/"+string(m.Parent().FullName())+"/"+string(m.Name()), req, resp))
	return resp
}

// starsOf reads the stars of each review of a reflected ProductReviews.
func starsOf(resp *dynamicpb.Message) []int64 {
	var out []int64
	reviews := resp.Get(resp.Descriptor().Fields().ByName("reviews")).List()
	for i := range reviews.Len() {
		r := reviews.Get(i).Message()
		rating := r.Get(r.Descriptor().Fields().ByName("rating")).Message()
		out = append(out, rating.Get(rating.Descriptor().Fields().ByName("stars")).Int())
	}
	return out
}

// TestGRPCReflection: every gRPC instance of the demo serves reflection and
// health, so grpcurl lists and calls it; a call with a tag is routed by it.
// reviews-v3 calls ratings in its own lane, v3, which ratings lacks (5 and
// 4 stars from ratings-v1); called with x-traffic-tag: gray, it calls
// ratings in the gray lane (3 and 2 stars from ratings-v2).
func TestGRPCReflection(t *testing.T) {
	sys := startSystem(t, app.Config{Replicas: map[string]int{"reviews-v3": 1, "ratings-v2": 1}})
	addr := map[string]string{}
	for _, d := range sys.Deployments() {
		for _, in := range d.Instances {
			addr[in.Name] = in.Addr
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()

	for _, inst := range []string{"reviews-v3-0", "ratings-v2-0"} {
		c := newReflectClient(t, ctx, addr[inst])
		assert.Subset(t, c.list(), []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"}, inst)
		h, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus(), inst)
	}

	c := newReflectClient(t, ctx, addr["reviews-v3-0"])
	assert.Contains(t, c.list(), "bookinfo.Reviews")
	get := c.method("bookinfo.Reviews", "GetReviews")
	resp := c.call(ctx, get, map[string]string{"product_id": "0"})
	assert.Equal(t, "reviews-v3-0", resp.Get(get.Output().Fields().ByName("podname")).String())
	assert.Equal(t, []int64{5, 4}, starsOf(resp), "untagged: the instance's own lane, v3; ratings falls back to prod")

	// The gray lane of ratings may take a moment to be ready in reviews'
	// client; until then, gray calls fall back to prod.
	require.Eventually(t, func() bool {
		stars := starsOf(c.call(ctx, get, map[string]string{"product_id": "0"}, "x-traffic-tag", "gray"))
		return len(stars) == 2 && stars[0] == 3 && stars[1] == 2
	}, defaultTestTimeout, pollInterval, "tagged gray: ratings-v2's 3 and 2 stars")
	assert.Equal(t, []int64{5, 4}, starsOf(c.call(ctx, get, map[string]string{"product_id": "0"})))
}
