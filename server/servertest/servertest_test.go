package servertest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"sync"
	"testing"
)

func TestLogBufferLines(t *testing.T) {
	var b LogBuffer
	var wg sync.WaitGroup
	for _, line := range []string{"a=1 b=2\n", "a=1 c=3\n", "b=2\n"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.Logger().Info(line[:len(line)-1])
		}()
	}
	wg.Wait()
	if got := b.Lines("a=1"); len(got) != 2 {
		t.Errorf("Lines(a=1) = %q, want 2 lines", got)
	}
	if got := b.WaitFor(t, "a=1", "c=3"); !ContainsAll(got, []string{"a=1", "c=3"}) {
		t.Errorf("WaitFor = %q", got)
	}
	if ContainsAll("x y", []string{"x", "z"}) {
		t.Error(`ContainsAll("x y", [x z]) = true`)
	}
}

func TestSelfSignedCert(t *testing.T) {
	certFile, keyFile := SelfSignedCert(t)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("the certificate does not verify for 127.0.0.1 against itself: %v", err)
	}
}
