package faults

import (
	"context"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ApplyGRPC applies s to one gRPC call: it waits the delay and returns nil
// when the call is to be served, a status error with Code(abort) and the
// message "fault injected" when it is to fail, or the status of ctx's
// error (Canceled, DeadlineExceeded) when ctx ends during the delay.
func (s *Switch) ApplyGRPC(ctx context.Context) error {
	abort, err := s.Apply(ctx)
	if err != nil {
		return status.FromContextError(err).Err()
	}
	if abort != 0 {
		return status.Error(Code(abort), "fault injected")
	}
	return nil
}

// Code maps an HTTP status to the gRPC code a gRPC service fails with for
// it. Statuses below 400 map to OK; error statuses without a closer match
// map to Unknown.
func Code(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.Aborted
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case 499: // client closed request
		return codes.Canceled
	case http.StatusInternalServerError:
		return codes.Internal
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	}
	if httpStatus < 400 {
		return codes.OK
	}
	return codes.Unknown
}
