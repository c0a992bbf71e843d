package app

// The no-routing baseline (Config.NoRouting), for measurements: every
// client calls the first instance of its service's base-lane deployment
// directly, and lanes, fallback and the registry play no part (the tag
// still travels).

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/graylane/graylane/httpmw"
)

// listenFixed takes the listeners of the fixed instances, before the
// clients are built, so that their addresses are known.
func (s *System) listenFixed() error {
	if s.cfg.Deployments != nil {
		return errors.New("routing can be turned off only with every deployment in one process")
	}
	s.fixedLis = map[string]net.Listener{}
	for _, d := range Deployments() {
		if d.Lane != "" {
			continue
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.fixedLis[d.Service] = lis
	}
	return nil
}

// dialFixed builds clients that call the fixed instances.
func (s *System) dialFixed() error {
	s.detailsClient = &http.Client{Transport: httpmw.NewTransport(&http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
	}, httpmw.WithPropagator(s.prop), httpmw.WithReceiptHosts(s.fixedLis["details"].Addr().String()))}
	var err error
	if s.reviewsConn, err = s.dialGRPC("passthrough:///" + s.fixedLis["reviews"].Addr().String()); err != nil {
		return err
	}
	s.ratingsConn, err = s.dialGRPC("passthrough:///" + s.fixedLis["ratings"].Addr().String())
	return err
}

// detailsURL is where productpage finds details: a logical host that the
// routing transport resolves, or the fixed instance.
func (s *System) detailsURL() string {
	if s.cfg.NoRouting {
		return "http://" + s.fixedLis["details"].Addr().String()
	}
	return "http://details"
}
