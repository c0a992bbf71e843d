package app

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
)

// DeploymentStatus is a deployment as the admin API shows it.
type DeploymentStatus struct {
	Name      string           `json:"name"`
	Service   string           `json:"service"`
	Version   string           `json:"version"`
	Lane      string           `json:"lane"`
	Replicas  int              `json:"replicas"`
	Note      string           `json:"note"`
	Fault     string           `json:"fault,omitempty"`
	Instances []InstanceStatus `json:"instances"`
}

// InstanceStatus is one instance as the admin API shows it.
type InstanceStatus struct {
	Name    string    `json:"name"`
	Addr    string    `json:"addr"`
	Lane    string    `json:"lane"`
	Health  string    `json:"health"`
	Started time.Time `json:"started"`
}

// LaneStatus is a lane as the admin API shows it.
type LaneStatus struct {
	Name        string   `json:"name"`
	Mode        string   `json:"mode"`
	Deployments []string `json:"deployments"`
}

// Deployments returns the state of every deployment this process runs, in
// the order of the walkthrough.
func (s *System) Deployments() []DeploymentStatus {
	s.mu.Lock()
	deps := s.deps
	s.mu.Unlock()
	var out []DeploymentStatus
	for _, spec := range Deployments() {
		d := deps[spec.Name]
		if d == nil {
			continue
		}
		st := DeploymentStatus{Name: d.Name, Service: d.Service, Version: d.Version, Lane: d.LaneName(), Note: d.Note, Instances: []InstanceStatus{}}
		if f := d.faults.Fault(); !f.IsZero() {
			st.Fault = f.String()
		}
		d.mu.Lock()
		for _, in := range d.instances {
			health := registry.Serving
			if reg := in.registration(); reg != nil {
				health = reg.Instance().Health
			}
			st.Instances = append(st.Instances, InstanceStatus{Name: in.name, Addr: in.addr, Lane: d.LaneName(), Health: health.String(), Started: in.started})
		}
		d.mu.Unlock()
		st.Replicas = len(st.Instances)
		out = append(out, st)
	}
	return out
}

// Lanes returns every lane of the demo and its mode.
func (s *System) Lanes() []LaneStatus {
	strict := s.StrictLanes()
	byLane := map[string][]string{}
	var names []string
	for _, d := range Deployments() {
		if _, ok := byLane[d.LaneName()]; !ok {
			names = append(names, d.LaneName())
		}
		byLane[d.LaneName()] = append(byLane[d.LaneName()], d.Name)
	}
	var out []LaneStatus
	for _, name := range names {
		mode := fallback.Loose.String()
		if slices.Contains(strict, name) {
			mode = fallback.Strict.String()
		}
		if name == "prod" {
			mode = "base"
		}
		out = append(out, LaneStatus{Name: name, Mode: mode, Deployments: byLane[name]})
	}
	return out
}

//go:embed admin.html
var adminHTML string

var adminPage = template.Must(template.New("admin").Funcs(template.FuncMap{
	"inc": func(n int) int { return n + 1 },
	"dec": func(n int) int { return n - 1 },
}).Parse(adminHTML))

// adminHandler serves the admin page and its JSON API:
//
//	GET  /api/deployments
//	POST /api/deployments/{name}/scale?replicas=N
//	POST /api/deployments/{name}/fault?delay=2s&abort=503   (empty: off)
//	GET  /api/lanes
//	GET  /api/notifications?n=20
//	POST /api/lanes/{lane}/mode?mode=strict|loose
//	GET  /api/lanemap     the lane map's data (see LaneMap)
//	GET  /metrics         every metric of the process, Prometheus text format
//
// The page's buttons are plain forms posting to the same routes with
// ?redirect=1, so every step of the walkthrough works without JavaScript.
func (s *System) adminHandler() http.Handler {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		data := map[string]any{
			"Deployments": s.Deployments(), "Lanes": s.Lanes(), "Gateway": s.GatewayURL(),
			"Max": MaxReplicas, "Message": r.URL.Query().Get("msg"), "Notifications": s.Notifications(10),
		}
		if err := adminPage.Execute(w, data); err != nil {
			s.log.Error("admin page", "error", err)
		}
	})
	r.Get("/api/deployments", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Deployments())
	})
	s.notificationsRoutes(r)
	r.Get("/api/lanes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Lanes())
	})
	r.Get("/api/lanemap", func(w http.ResponseWriter, r *http.Request) {
		lm, err := s.LaneMap(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, lm)
	})
	r.Handle("/metrics", s.tel.MetricsHandler())
	r.Post("/api/deployments/{name}/scale", func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		n, err := strconv.Atoi(r.FormValue("replicas"))
		if err != nil {
			s.answer(w, r, http.StatusBadRequest, fmt.Errorf("replicas %q: want a number", r.FormValue("replicas")))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := s.Scale(ctx, name, n); err != nil {
			s.answer(w, r, http.StatusBadRequest, err)
			return
		}
		s.answer(w, r, http.StatusOK, fmt.Sprintf("%s scaled to %d", name, n))
	})
	r.Post("/api/deployments/{name}/fault", func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		sw := s.Faults(name)
		if sw == nil {
			s.answer(w, r, http.StatusNotFound, fmt.Errorf("no deployment %q", name))
			return
		}
		var f faults.Fault
		if v := r.FormValue("delay"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				s.answer(w, r, http.StatusBadRequest, fmt.Errorf("delay %q: %w", v, err))
				return
			}
			f.Delay = d
		}
		if v := r.FormValue("abort"); v != "" {
			code, err := strconv.Atoi(v)
			if err != nil {
				s.answer(w, r, http.StatusBadRequest, fmt.Errorf("abort %q: want an HTTP status", v))
				return
			}
			f.Abort = code
		}
		if err := sw.Set(f); err != nil {
			s.answer(w, r, http.StatusBadRequest, err)
			return
		}
		s.answer(w, r, http.StatusOK, fmt.Sprintf("%s fault: %s", name, f))
	})
	r.Post("/api/lanes/{lane}/mode", func(w http.ResponseWriter, r *http.Request) {
		lane := chi.URLParam(r, "lane")
		var m fallback.Mode
		if err := m.UnmarshalText([]byte(r.FormValue("mode"))); err != nil {
			s.answer(w, r, http.StatusBadRequest, err)
			return
		}
		if err := s.SetLaneMode(lane, m); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ErrUnknownLane) {
				code = http.StatusNotFound
			}
			s.answer(w, r, code, err)
			return
		}
		s.answer(w, r, http.StatusOK, fmt.Sprintf("lane %s is %s", lane, m))
	})
	return r
}

// answer replies to an API call: JSON, or a redirect back to the page for
// the page's forms.
func (s *System) answer(w http.ResponseWriter, r *http.Request, code int, v any) {
	msg := fmt.Sprint(v)
	if err, ok := v.(error); ok {
		msg = "error: " + err.Error()
	}
	if r.FormValue("redirect") != "" {
		http.Redirect(w, r, "/?msg="+url.QueryEscape(msg), http.StatusSeeOther)
		return
	}
	if err, ok := v.(error); ok {
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, code, map[string]any{"ok": msg, "deployments": s.Deployments(), "lanes": s.Lanes()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
