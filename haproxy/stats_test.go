package haproxy

import "testing"

// TestShowStatCountsFailedAttempts: the admin socket's statistics give each server's failed and
// retried attempts (econ, eresp, wretr, wredis), which hrsp_* never count, and its slow-start throttle.
func TestShowStatCountsFailedAttempts(t *testing.T) {
	out := "# pxname,svname,scur,econ,eresp,wretr,wredis,status,weight,check_status,hrsp_2xx,hrsp_5xx,throttle,\n" +
		"be,c1,0,2,3,5,7,UP,10,L7OK,40,1,,\n" +
		"be,s1,1,,,,,UP,90,L7OK,400,0,50,\n" +
		"be,BACKEND,1,2,3,5,7,UP,100,,440,1,,\n"
	got, err := parseShowStat("be", out)
	if err != nil {
		t.Fatal(err)
	}
	if c := got["c1"]; c.Failed != 17 || c.Responses != 41 || c.Errors5xx != 1 || c.Throttle != 0 {
		t.Errorf("c1 = %+v, want 17 failed attempts, 41 responses, 1 5xx, no throttle", c)
	}
	if s := got["s1"]; s.Failed != 0 || s.Throttle != 50 {
		t.Errorf("s1 = %+v, want no failed attempts and a throttle of 50%%", s)
	}
	if len(got) != 2 {
		t.Errorf("servers %v: want c1 and s1 only", got)
	}
}
