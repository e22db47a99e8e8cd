package scaleset

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
	"github.com/galevm/gale/pkg/server/httpapi"
)

// heartbeat is how often an idle event stream gets a comment.
const heartbeat = 15 * time.Second

// Routes registers the scale-set API (see pkg/api) and the global event
// stream.
func (s *Service) Routes(r httpapi.Router) {
	r.Handle("GET "+api.SetsPath, func(w http.ResponseWriter, r *http.Request) error {
		sets, err := s.List(r.Context())
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, sets)
	})
	r.Handle("POST "+api.SetsPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.CreateSetRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		return answer(w, http.StatusCreated)(s.Create(r.Context(), req))
	})
	r.Handle("GET "+api.SetPath, func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK)(s.Get(r.Context(), r.PathValue("name")))
	})
	r.Handle("DELETE "+api.SetPath, func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusAccepted)(s.Delete(r.Context(), r.PathValue("name")))
	})
	r.Handle("POST "+api.SetScalePath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.ScaleRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(s.Scale(r.Context(), r.PathValue("name"), req.Capacity, api.TriggerUser))
	})
	r.Handle("POST "+api.SetModelPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.UpdateSetRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(s.Update(r.Context(), r.PathValue("name"), req, nil))
	})
	r.Handle("POST "+api.SetUpgradePath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.UpgradeRequest
		if err := httpapi.Decode(r, &req, true); err != nil {
			return err
		}
		return answer(w, http.StatusAccepted)(s.Upgrade(r.Context(), r.PathValue("name"), req))
	})
	r.Handle("GET "+api.SetInstancesPath, func(w http.ResponseWriter, r *http.Request) error {
		insts, err := s.Instances(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, insts)
	})
	r.Handle("DELETE "+api.SetInstancePath, func(w http.ResponseWriter, r *http.Request) error {
		if err := s.InstanceAction(r.Context(), r.PathValue("name"), r.PathValue("instance"), "delete", api.ProtectRequest{}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	})
	r.Handle("POST "+api.SetInstanceActPath, func(w http.ResponseWriter, r *http.Request) error {
		var prot api.ProtectRequest
		if err := httpapi.Decode(r, &prot, true); err != nil {
			return err
		}
		if err := s.InstanceAction(r.Context(), r.PathValue("name"), r.PathValue("instance"), r.PathValue("action"), prot); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	})
	r.Handle("GET "+api.SetAutoscalePath, func(w http.ResponseWriter, r *http.Request) error {
		explain, _ := strconv.ParseBool(r.URL.Query().Get("explain"))
		return answerAny(w, http.StatusOK)(s.Autoscale(r.Context(), r.PathValue("name"), explain))
	})
	r.Handle("PUT "+api.SetAutoscalePath, func(w http.ResponseWriter, r *http.Request) error {
		var settings autoscale.Settings
		if err := httpapi.Decode(r, &settings, false); err != nil {
			return err
		}
		return answerAny(w, http.StatusOK)(s.SetAutoscale(r.Context(), r.PathValue("name"), settings))
	})
	r.Handle("POST "+api.SetAutoscalePath, func(w http.ResponseWriter, r *http.Request) error {
		on, err := strconv.ParseBool(r.URL.Query().Get("enabled"))
		if err != nil {
			return fmt.Errorf("%w: enabled: want true or false", httpapi.ErrInvalidBody)
		}
		return answerAny(w, http.StatusOK)(s.EnableAutoscale(r.Context(), r.PathValue("name"), on))
	})
	r.Handle("GET "+api.SetMetricsPath, func(w http.ResponseWriter, r *http.Request) error {
		var since time.Duration
		if v := r.URL.Query().Get("since"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%w: since: %w", httpapi.ErrInvalidBody, err)
			}
			since = d
		}
		m, err := s.Metrics(r.Context(), r.PathValue("name"), since)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, m)
	})
	r.Handle("GET "+api.SetActivityPath, s.serveActivity)
	r.Handle("GET "+api.EventsPath, s.serveEvents)
}

// answer returns a function that writes a set with status, or returns the
// call's error.
func answer(w http.ResponseWriter, status int) func(api.ScaleSet, error) error {
	return func(set api.ScaleSet, err error) error {
		if err != nil {
			return err
		}
		return httpapi.JSON(w, status, set)
	}
}

// answerAny is answer for an autoscale view.
func answerAny(w http.ResponseWriter, status int) func(api.AutoscaleView, error) error {
	return func(v api.AutoscaleView, err error) error {
		if err != nil {
			return err
		}
		return httpapi.JSON(w, status, v)
	}
}

// serveActivity answers the activity log (?after=ID&limit=N), or streams
// it with ?follow=true.
func (s *Service) serveActivity(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	q := r.URL.Query()
	var after int64
	var limit int
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("%w: after: %w", httpapi.ErrInvalidBody, err)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("%w: limit: %w", httpapi.ErrInvalidBody, err)
		}
	}
	if follow, _ := strconv.ParseBool(q.Get("follow")); !follow {
		acts, err := s.Activity(r.Context(), name, after, limit)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, acts)
	}
	if _, _, err := s.row(r.Context(), name); err != nil {
		return err
	}
	return httpapi.Stream(w, r, heartbeat, func(ctx context.Context, send func(any) error) error {
		return s.FollowActivity(ctx, name, after, func(a api.Activity) error { return send(a) })
	})
}

// serveEvents streams the global event stream, filtered by ?kind=a,b.
func (s *Service) serveEvents(w http.ResponseWriter, r *http.Request) error {
	var kinds []string
	if k := r.URL.Query().Get("kind"); k != "" {
		kinds = strings.Split(k, ",")
	}
	sub := s.cfg.Events.Subscribe(kinds...)
	defer sub.Close()
	return httpapi.Stream(w, r, heartbeat, func(ctx context.Context, send func(any) error) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev := <-sub.C:
				if err := send(ev); err != nil {
					return err
				}
			}
		}
	})
}
