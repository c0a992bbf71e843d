// Package bookinfopb holds the protobuf messages and gRPC services of the
// Bookinfo reviews and ratings services: Reviews.GetReviews, and
// Ratings.GetRatings and Ratings.Rate.
//
// Product ids are strings in requests, so that a non-numeric id reaches the
// service, which answers it with codes.InvalidArgument and the error
// sentence of the original HTTP service ("please provide numeric product
// id", "please provide numeric product ID") as the status message. The
// messages keep the field names of the original JSON, so that productpage
// can serve the same JSON from them.
//
// The Go code is generated; see gen.go for the command.
package bookinfopb
