package productpage

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
)

//go:embed templates
var files embed.FS

var (
	pages = template.Must(template.ParseFS(files, "templates/*.html"))
	css   = template.CSS(mustRead("templates/style.css"))
)

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// pageData is what the templates show.
type pageData struct {
	CSS      template.CSS
	Instance string
	Gray     bool
	ShowUser bool
	User     string

	Product      product
	Description  template.HTML
	Details      *detailsView
	DetailsError string
	Reviews      *reviewsView
	ReviewsError string
	ShowRoute    bool
	Route        []hopView
}

type detailsView struct {
	Author, Year, Type, Pages, Publisher, Language, ISBN10, ISBN13 string
}

type reviewsView struct {
	Podname string
	Cluster string // "" when unset
	Reviews []reviewView
}

type reviewView struct {
	Reviewer    string
	Text        string
	Stars       int // filled stars, 0 to 5
	Empty       int // empty stars, 5 - Stars when Stars > 0
	Color       string
	RatingError string
}

type hopView struct {
	Hop
	Base     bool
	LaneName string
}

func (s *server) data(r *http.Request, showUser bool) pageData {
	return pageData{
		CSS:      css,
		Instance: s.cfg.instance,
		Gray:     s.cfg.gray,
		ShowUser: showUser,
		User:     userOf(r),
	}
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	s.render(w, "index.html", s.data(r, false))
}

// productPage renders the page of product 0. It always answers 200: a
// failing upstream only changes what the page says.
func (s *server) productPage(w http.ResponseWriter, r *http.Request) {
	const id = "0"
	ctx := r.Context()
	fwd := forwardHeaders(r)
	d := s.data(r, true)
	d.Product = theBook
	d.Description = template.HTML(theBook.DescriptionHTML) // a constant of this package

	if code, body := s.details(ctx, id, fwd); code == http.StatusOK {
		d.Details = toDetailsView(body)
	}
	if d.Details == nil {
		d.DetailsError = MsgDetailsUnavailable
	}
	if code, resp := s.reviews(ctx, id, fwd); code == http.StatusOK {
		d.Reviews = toReviewsView(resp)
	} else {
		d.ReviewsError = MsgReviewsUnavailable
	}
	if s.cfg.route != nil {
		d.ShowRoute = true
		for _, h := range s.cfg.route(ctx) {
			hv := hopView{Hop: h, LaneName: h.Lane}
			if hv.LaneName == "" {
				hv.LaneName = "prod"
			}
			hv.Base = hv.LaneName == "prod"
			d.Route = append(d.Route, hv)
		}
	}
	s.render(w, "productpage.html", d)
	if s.cfg.pageView != nil {
		s.cfg.pageView(ctx, PageView{ProductID: 0, User: userOf(r), Instance: s.cfg.instance})
	}
}

func (s *server) render(w http.ResponseWriter, name string, d pageData) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, d); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// toDetailsView reads the details JSON, or returns nil when it is not an
// object.
func toDetailsView(body []byte) *detailsView {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil
	}
	str := func(k string) string {
		if v, ok := m[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	return &detailsView{
		Author:    str("author"),
		Year:      str("year"),
		Type:      str("type"),
		Pages:     str("pages"),
		Publisher: str("publisher"),
		Language:  str("language"),
		ISBN10:    str("ISBN-10"),
		ISBN13:    str("ISBN-13"),
	}
}

func toReviewsView(p *bookinfopb.ProductReviews) *reviewsView {
	v := &reviewsView{Podname: p.GetPodname(), Cluster: p.GetClustername()}
	if v.Cluster == "null" {
		v.Cluster = ""
	}
	for _, r := range p.GetReviews() {
		rv := reviewView{Reviewer: r.GetReviewer(), Text: r.GetText()}
		if rt := r.GetRating(); rt != nil {
			if rt.GetError() != "" {
				rv.RatingError = rt.GetError()
			} else {
				rv.Stars = int(min(max(rt.GetStars(), 0), 5))
				if rv.Stars > 0 {
					rv.Empty = 5 - rv.Stars
				}
				rv.Color = rt.GetColor()
			}
		}
		v.Reviews = append(v.Reviews, rv)
	}
	return v
}
