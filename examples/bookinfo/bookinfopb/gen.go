package bookinfopb

// The Go code in this package is generated from bookinfo.proto with protoc
// 3.21, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2:
//
//	apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	go generate ./examples/bookinfo/bookinfopb
//
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative bookinfo.proto
