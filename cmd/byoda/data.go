package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/devnet"
	"github.com/byoda/byoda-go/internal/pki"
)

// dataActions are the actions `byoda data` knows; the websockets stream.
var dataActions = map[string]bool{"query": false, "append": false, "mutate": false,
	"update": false, "delete": false, "updates": true, "counter": true}

// dataFlags are the settings of `byoda data`.
type dataFlags struct {
	action, class string

	devnetDir  string
	pod        int
	serviceID  uint
	url        string
	serverName string
	rootCA     string
	cert, key  string
	token      string

	data, dataFile string
	sets           stringList
	filters        stringList
	filterJSON     string
	first          int
	after          string
	fields         string
	depth          int
	relations      string
	remoteMemberID string
	queryID        string
	output         string
}

func runData(ctx context.Context, args []string, getenv env) error {
	f, err := parseDataFlags(args, getenv)
	if err != nil {
		return err
	}
	return f.run(ctx, os.Stdout)
}

func parseDataFlags(args []string, getenv env) (*dataFlags, error) {
	if len(args) < 2 || strings.HasPrefix(args[0], "-") || strings.HasPrefix(args[1], "-") {
		return nil, errors.New("usage: byoda data ACTION CLASS [flags]; ACTION is query, " +
			"append, mutate, update, delete, updates or counter")
	}
	f := &dataFlags{action: args[0], class: args[1]}
	if _, ok := dataActions[f.action]; !ok {
		return nil, fmt.Errorf("unknown action %q: use query, append, mutate, update, delete, "+
			"updates or counter", f.action)
	}

	fs := flag.NewFlagSet("byoda data", flag.ContinueOnError)
	fs.StringVar(&f.devnetDir, "devnet", envOr(getenv, "DEVNET_DIR", ""),
		"take the pod's address, certificates and service from this devnet (env DEVNET_DIR)")
	fs.IntVar(&f.pod, "pod", 1, "which pod of the devnet, from 1")
	fs.UintVar(&f.serviceID, "service-id", 0, "the service [the devnet's first]")
	fs.StringVar(&f.url, "url", "", "the pod, https://HOST:PORT [from the devnet]")
	fs.StringVar(&f.serverName, "server-name", "", "TLS name of the pod [the member's name]")
	fs.StringVar(&f.rootCA, "root-ca", "", "the network's root CA [from the devnet]")
	fs.StringVar(&f.cert, "cert", "", "member certificate chain, for the pod port")
	fs.StringVar(&f.key, "key", "", "its unencrypted key")
	fs.StringVar(&f.token, "token", envOr(getenv, "BYODA_TOKEN", ""),
		"a member token, for the HTTPS port, instead of a certificate (env BYODA_TOKEN)")
	fs.StringVar(&f.data, "data", "", "the record, as JSON")
	fs.StringVar(&f.dataFile, "data-file", "", "the record, from a JSON file")
	fs.Var(&f.sets, "set", "a field of the record, FIELD=VALUE; repeatable")
	fs.Var(&f.filters, "filter", "a condition, 'FIELD OP VALUE'; repeatable, all must hold")
	fs.StringVar(&f.filterJSON, "filter-json", "", "the filter, as JSON")
	fs.IntVar(&f.first, "first", 0, "page size of a query")
	fs.StringVar(&f.after, "after", "", "continue a query after this cursor")
	fs.StringVar(&f.fields, "fields", "", "fields to return, comma-separated")
	fs.IntVar(&f.depth, "depth", 0, "how far through the network a query goes")
	fs.StringVar(&f.relations, "relations", "", "network links to follow, comma-separated")
	fs.StringVar(&f.remoteMemberID, "remote-member-id", "", "the one pod to reach")
	fs.StringVar(&f.queryID, "query-id", "", "the query id [a new one]")
	fs.StringVar(&f.output, "output", "json", "json or table")
	if err := fs.Parse(args[2:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.output != "json" && f.output != "table" {
		return nil, fmt.Errorf("--output must be json or table, not %q", f.output)
	}
	return f, f.fromDevnet()
}

// fromDevnet fills the connection settings from a devnet's devnet.json.
func (f *dataFlags) fromDevnet() error {
	if f.devnetDir == "" {
		if f.url == "" || f.rootCA == "" || f.serviceID == 0 {
			return errors.New("give --devnet DIR, or --url, --root-ca and --service-id")
		}
		return nil
	}

	data, err := os.ReadFile(f.devnetDir + "/devnet.json")
	if err != nil {
		return fmt.Errorf("--devnet: %w", err)
	}
	var info devnet.Info
	if err := json.Unmarshal(data, &info); err != nil {
		return fmt.Errorf("--devnet: %w", err)
	}
	if f.pod < 1 || f.pod > len(info.Pods) {
		return fmt.Errorf("--pod must be from 1 to %d", len(info.Pods))
	}
	pod := info.Pods[f.pod-1]

	if f.serviceID == 0 && len(info.Services) > 0 {
		f.serviceID = uint(info.Services[0].ServiceID)
	}
	for _, m := range pod.Members {
		if uint(m.ServiceID) != f.serviceID {
			continue
		}
		if f.serverName == "" {
			f.serverName = pki.MemberName(info.Network, m.MemberID, m.ServiceID).String()
		}
		if f.token == "" && f.cert == "" {
			f.cert, f.key = m.Cert, m.Key
		}
	}
	if f.url == "" {
		f.url = pod.PodURL
		if f.token != "" {
			f.url = pod.HTTPSURL
		}
	}
	if f.rootCA == "" {
		f.rootCA = info.RootCA
	}
	return nil
}

func (f *dataFlags) tlsConfig() (*tls.Config, error) {
	roots, err := pki.LoadCerts(f.rootCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(roots[0])
	cfg := &tls.Config{RootCAs: pool, ServerName: f.serverName, MinVersion: tls.VersionTLS12}

	if f.cert != "" {
		cert, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--cert and --key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// body builds the request of the action from the flags.
func (f *dataFlags) body() (map[string]any, error) {
	b := map[string]any{}
	rec, err := f.record()
	if err != nil {
		return nil, err
	}
	if rec != nil {
		b["data"] = rec
	}
	filter, err := f.filter()
	if err != nil {
		return nil, err
	}
	if filter != nil {
		b["filter"] = filter
	}

	if f.first > 0 {
		b["first"] = f.first
	}
	if f.after != "" {
		b["after"] = f.after
	}
	if f.fields != "" {
		b["fields"] = strings.Split(f.fields, ",")
	}
	if f.depth > 0 {
		b["depth"] = f.depth
	}
	if f.relations != "" {
		b["relations"] = strings.Split(f.relations, ",")
	}
	if f.remoteMemberID != "" {
		b["remote_member_id"] = f.remoteMemberID
	}
	if f.queryID == "" && f.action == "query" && f.depth > 0 {
		f.queryID = uuid.NewString()
	}
	if f.queryID != "" {
		b["query_id"] = f.queryID
	}
	return b, nil
}

func (f *dataFlags) record() (map[string]any, error) {
	var rec map[string]any
	switch {
	case f.data != "":
		if err := json.Unmarshal([]byte(f.data), &rec); err != nil {
			return nil, fmt.Errorf("--data must be a JSON object: %w", err)
		}
	case f.dataFile != "":
		data, err := os.ReadFile(f.dataFile)
		if err != nil {
			return nil, fmt.Errorf("--data-file: %w", err)
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("--data-file must hold a JSON object: %w", err)
		}
	}

	for _, s := range f.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q must be FIELD=VALUE", s)
		}
		if rec == nil {
			rec = map[string]any{}
		}
		rec[k] = scalar(v)
	}
	return rec, nil
}

func (f *dataFlags) filter() (map[string]map[string]any, error) {
	var out map[string]map[string]any
	if f.filterJSON != "" {
		if err := json.Unmarshal([]byte(f.filterJSON), &out); err != nil {
			return nil, fmt.Errorf("--filter-json: %w", err)
		}
	}
	for _, cond := range f.filters {
		parts := strings.SplitN(strings.TrimSpace(cond), " ", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("--filter %q must be 'FIELD OP VALUE'", cond)
		}
		if out == nil {
			out = map[string]map[string]any{}
		}
		if out[parts[0]] == nil {
			out[parts[0]] = map[string]any{}
		}
		out[parts[0]][parts[1]] = scalar(parts[2])
	}
	return out, nil
}

// scalar reads a value given on the command line: a JSON number or boolean
// when it is one, else the text.
func scalar(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, ".eE") {
		return x
	}
	if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
		return b
	}
	return v
}

func (f *dataFlags) path(prefix string) string {
	return fmt.Sprintf("%s/v1/data/%d/%s/%s", prefix, f.serviceID, url.PathEscape(f.class),
		f.action)
}

func (f *dataFlags) run(ctx context.Context, out io.Writer) error {
	cfg, err := f.tlsConfig()
	if err != nil {
		return err
	}
	body, err := f.body()
	if err != nil {
		return err
	}
	if dataActions[f.action] {
		return f.stream(ctx, cfg, body, out)
	}

	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+f.path("/api"),
		bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}

	c := &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var d struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(reply, &d)
		return fmt.Errorf("the pod answered %d: %s", resp.StatusCode, d.Detail)
	}
	return f.print(out, reply)
}

// print writes a reply as indented JSON, or a query's edges as a table.
func (f *dataFlags) print(out io.Writer, reply []byte) error {
	if f.output == "json" || f.action != "query" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, bytes.TrimSpace(reply), "", "  "); err != nil {
			_, err = out.Write(reply)
			return err
		}
		buf.WriteByte('\n')
		_, err := buf.WriteTo(out)
		return err
	}

	var page struct {
		Edges []struct {
			Cursor string         `json:"cursor"`
			Origin string         `json:"origin"`
			Node   map[string]any `json:"node"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(reply, &page); err != nil {
		return err
	}
	cols := map[string]bool{}
	for _, e := range page.Edges {
		for k := range e.Node {
			cols[k] = true
		}
	}
	names := make([]string, 0, len(cols))
	for k := range cols {
		names = append(names, k)
	}
	sort.Strings(names)

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CURSOR\tORIGIN\t"+strings.ToUpper(strings.Join(names, "\t")))
	for _, e := range page.Edges {
		row := []string{e.Cursor, e.Origin}
		for _, k := range names {
			v := e.Node[k]
			if v == nil {
				row = append(row, "")
				continue
			}
			row = append(row, fmt.Sprint(v))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// stream prints the messages of an updates or counter websocket, one JSON
// object a line, until ctx ends or the pod closes it.
func (f *dataFlags) stream(ctx context.Context, cfg *tls.Config, body map[string]any,
	out io.Writer) error {
	header := http.Header{}
	if f.token != "" {
		header.Set("Authorization", "Bearer "+f.token)
	}
	u := strings.Replace(f.url, "https://", "wss://", 1) + f.path("/ws-api")
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header,
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}})
	if err != nil {
		if resp != nil {
			return fmt.Errorf("the pod answered %d", resp.StatusCode)
		}
		return err
	}
	defer conn.CloseNow()

	data, _ := json.Marshal(body)
	if err := conn.Write(ctx, websocket.MessageText, data); err != nil {
		return err
	}
	for {
		_, msg, err := conn.Read(ctx)
		if ctx.Err() != nil {
			conn.Close(websocket.StatusNormalClosure, "")
			return nil
		}
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return nil
			}
			return err
		}
		fmt.Fprintln(out, string(msg))
	}
}
