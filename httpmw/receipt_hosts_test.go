package httpmw_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/receipt"
)

// TestReceiptsNotAskedOfOutsideHosts: a service with receipts on calls an
// outside host (a URL it does not route) that answers with a forged hop.
// The host must not be asked for a receipt, and its hop must not enter the
// caller's receipt, unless the host is allowed with WithReceiptHosts.
func TestReceiptsNotAskedOfOutsideHosts(t *testing.T) {
	asked := make(chan []string, 1)
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- r.Header.Values(receipt.Header)
		w.Header().Set(receipt.Header, "svc=payments;inst=evil-0;lane=prod")
	}))
	defer outside.Close()
	u, err := url.Parse(outside.URL)
	require.NoError(t, err)

	for _, tt := range []struct {
		name    string
		opts    []httpmw.Option
		allowed bool
	}{
		{"not routed", nil, false},
		{"another host allowed", []httpmw.Option{httpmw.WithReceiptHosts("billing:8080")}, false},
		{"allowed", []httpmw.Option{httpmw.WithReceiptHosts("billing", u.Host)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			out := &http.Client{Transport: httpmw.NewTransport(tr, tt.opts...)}
			front := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, outside.URL, nil)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				resp, err := out.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				resp.Body.Close()
				fmt.Fprint(w, "ok")
			}), httpmw.WithRouteReceipt(receipt.Self{Service: "front", Instance: "front-0", Lane: "prod"})))
			defer front.Close()

			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			resp, body := secGet(t, client, front.URL, http.Header{"X-Graylane-Route": {receipt.Ask}})
			require.Equal(t, "ok", body)
			hops, err := receipt.Parse(resp.Header.Get(receipt.Header))
			require.NoError(t, err)
			var services []string
			for _, h := range hops {
				services = append(services, h.Service)
			}
			if tt.allowed {
				assert.Equal(t, []string{"front"}, <-asked)
				assert.Equal(t, []string{"front", "payments"}, services)
			} else {
				assert.Empty(t, <-asked, "the outside host is not asked")
				assert.Equal(t, []string{"front"}, services, "no hop from the outside host")
			}
		})
	}
}

// TestRenamedReceiptHeader: with receipt.Self.Header set, the middleware
// answers on that header only, and the transport asks the next service on
// it and collects its hops from it.
func TestRenamedReceiptHeader(t *testing.T) {
	self := func(svc string) receipt.Self {
		return receipt.Self{Service: svc, Instance: svc + "-0", Lane: "prod", Header: "x-qa-route"}
	}
	back := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}), httpmw.WithRouteReceipt(self("back"))))
	defer back.Close()
	u, err := url.Parse(back.URL)
	require.NoError(t, err)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	out := &http.Client{Transport: httpmw.NewTransport(tr, httpmw.WithReceiptHosts(u.Host))}
	front := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, back.URL, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := out.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		fmt.Fprint(w, "ok")
	}), httpmw.WithRouteReceipt(self("front"))))
	defer front.Close()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	resp, _ := secGet(t, client, front.URL, http.Header{"X-Qa-Route": {receipt.Ask}})
	assert.Empty(t, resp.Header.Values(receipt.Header))
	hops, err := receipt.Parse(resp.Header.Get("X-Qa-Route"))
	require.NoError(t, err)
	require.Len(t, hops, 2)
	assert.Equal(t, "front", hops[0].Service)
	assert.Equal(t, "back", hops[1].Service)
	assert.Equal(t, "front", hops[1].From)

	resp, _ = secGet(t, client, front.URL, http.Header{"X-Graylane-Route": {receipt.Ask}})
	assert.Empty(t, resp.Header.Values(receipt.Header), "the default header asks for nothing")
	assert.Empty(t, resp.Header.Values("X-Qa-Route"))

	assert.PanicsWithValue(t, `httpmw: receipt: header "x qa": byte ' ' at offset 1; allowed are letters, digits, '-', '_' and '.'`, func() {
		httpmw.Middleware(httpmw.WithRouteReceipt(receipt.Self{Header: "x qa"}))
	})
}
