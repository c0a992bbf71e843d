// Package ratings is the Bookinfo ratings service, as a gRPC service
// (bookinfopb.RatingsServer).
//
// Two versions:
//
//   - V1 keeps ratings in memory. GetRatings answers the ratings last
//     stored for the product with Rate, or Reviewer1 5 and Reviewer2 4.
//     Rate replaces the product's ratings and echoes them.
//   - V2 stands for the original's database-backed version: GetRatings
//     answers Reviewer1 3 and Reviewer2 2, and Rate fails with
//     codes.Unimplemented "Post not implemented for database backed
//     ratings".
//
// Errors, as codes.InvalidArgument with the original's sentence as the
// message: a product id that strconv.ParseInt rejects in base 10 gets
// "please provide numeric product ID"; Rate with no ratings, an empty
// reviewer name or stars outside 0 to 5 gets "please provide valid ratings
// JSON". Rate checks its input before V2 refuses it, as the original
// does.
//
// Each Server has a Store of its own, like one pod of the original; give
// several instances the same Store (WithStore) to share their ratings.
//
// The fault switch given with WithFaults applies to every call before it
// is served. The Server carries no interceptors: register it on a
// grpc.Server built with the ones the deployment needs.
package ratings
