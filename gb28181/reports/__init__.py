"""Operator reports (issue 10): time-weighted online rates from the status event log (online.py), annotation,
naming and ID compliance (quality.py), and text/CSV/HTML renderings (render.py). Pure: no IO, no clock reads;
gather.py is the one module that reads the store."""
