package details_test

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/graylane/graylane/examples/bookinfo/details"
)

func ExampleNew() {
	srv := httptest.NewServer(details.New())
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/details/1")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 {"id":1,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}
}
