// Package details is the Bookinfo details service: an HTTP service that
// describes the book, the same book for every product id.
//
// Routes:
//
//	GET /health        200 {"status":"Details is healthy"}
//	GET /details/{id}  200 {"id":0,"author":"William Shakespeare","year":1595,"type":"paperback",
//	                        "pages":200,"publisher":"PublisherA","language":"English",
//	                        "ISBN-10":"1234567890","ISBN-13":"123-1234567890"}
//	                   with {id} echoed as a number; a non-numeric {id} (anything
//	                   strconv.ParseInt rejects in base 10) gets
//	                   400 {"error":"please provide numeric product id"}
//
// The fault switch given with WithFaults applies to /details/{id} only, so
// that health checks keep answering while the service is made slow or
// failing.
//
// New returns a plain http.Handler: wrap it with whatever middleware the
// deployment needs (graylane's httpmw, logging) before serving it.
package details
