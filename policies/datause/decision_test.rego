# Unit tests of the data-use decision, run with `opa test policies/datause`.
#
# They use `with input as` / `with data.documents as`, which crashes regopy 1.5.2, so they
# run only where an `opa` binary exists; the decision table replays on regopy everywhere.
package datause.decision_test

import data.datause.decision

day := 86400000000000

# The decision view that datatrust.policies.documents.rego_data builds from the documents.
documents := {
	"policy_version": "test 1",
	"purposes": ["research", "service-planning"],
	"agreements": {
		"dsa-b-planning": {
			"id": "dsa-b-planning",
			"version": "2",
			"status": "active",
			"agencies": ["council"],
			"purposes": ["service-planning"],
			"recipient_roles": ["analyst"],
			"forms": {"health": {"Area.code": "identifiable", "Area.count": "aggregate-only"}},
			"disclosure": {"min_cell_size": 10, "rounding_base": 5},
			"national_data_opt_out_applies": false,
			"consent_required": false,
			"start": "2026-01-01",
			"end": "2026-12-31",
			"start_ns": 10 * day,
			"end_ns": 20 * day,
		},
		"dsa-a-research": {
			"id": "dsa-a-research",
			"version": "1",
			"status": "active",
			"agencies": ["council", "university"],
			"purposes": ["research", "service-planning"],
			"recipient_roles": ["researcher"],
			"forms": {"health": {
				"Person.id": "pseudonymised",
				"Person.nhsNumber": "masked",
				"Area.code": "identifiable",
			}},
			"disclosure": {"min_cell_size": 7, "rounding_base": 10},
			"national_data_opt_out_applies": true,
			"consent_required": true,
			"start": "2026-01-01",
			"end": "2026-12-31",
			"start_ns": 10 * day,
			"end_ns": 20 * day,
		},
	},
}

planning := {
	"requester": {"agency": "council", "roles": ["analyst"], "client": "portal"},
	"purpose": "service-planning",
	"node": "health",
	"fields": ["Area.code", "Area.count"],
	"aggregate": true,
	"now_ns": 15 * day,
}

research := {
	"requester": {"agency": "university", "roles": ["researcher"], "client": "portal"},
	"purpose": "research",
	"node": "health",
	"fields": ["Person.id", "Person.nhsNumber", "Person.id"],
	"aggregate": false,
	"now_ns": 15 * day,
}

test_planning_aggregates_are_allowed_with_disclosure_obligations if {
	d := decision.decision with input as planning with data.documents as documents
	d.allow == true
	d.agreement == "dsa-b-planning"
	d.policy_version == "test 1"
	d.obligations == {
		"aggregate_only": true,
		"min_cell": 10,
		"round_to": 5,
		"mask": [],
		"pseudonymise": [],
		"row_filters": [{"kind": "agreement_period", "from": "2026-01-01", "until": "2026-12-31"}],
	}
}

test_aggregate_only_field_row_by_row_is_denied if {
	d := decision.decision with input as object.union(planning, {"aggregate": false})
		with data.documents as documents
	d.allow == false
	d.agreement == null
	d.reasons == ["agreement dsa-b-planning shares field Area.count as aggregates only"]
}

test_research_masks_pseudonymises_and_filters_rows if {
	d := decision.decision with input as research with data.documents as documents
	d.allow == true
	d.agreement == "dsa-a-research"
	d.obligations.mask == ["Person.nhsNumber"]
	d.obligations.pseudonymise == ["Person.id"]
	d.obligations.row_filters == [
		{"kind": "consent", "purpose": "research"},
		{"kind": "national_data_opt_out"},
		{"kind": "agreement_period", "from": "2026-01-01", "until": "2026-12-31"},
	]
}

test_the_end_instant_is_outside_the_agreement if {
	d := decision.decision with input as object.union(planning, {"now_ns": 20 * day})
		with data.documents as documents
	d.allow == false
}

test_the_start_instant_is_inside_the_agreement if {
	d := decision.decision with input as object.union(planning, {"now_ns": 10 * day})
		with data.documents as documents
	d.allow == true
}

test_unknown_purpose_is_denied_with_a_reason if {
	d := decision.decision with input as object.union(planning, {"purpose": "marketing"})
		with data.documents as documents
	d.reasons == ["purpose 'marketing' is not in the trust's purpose register"]
}

test_missing_input_fails_closed if {
	d := decision.decision with input as {} with data.documents as documents
	d.allow == false
	count(d.reasons) == 6
}

test_a_field_outside_the_agreement_is_named if {
	d := decision.decision with input as object.union(planning, {"fields": ["Area.code", "Person.id"]})
		with data.documents as documents
	d.allow == false
	d.reasons == ["agreement dsa-b-planning does not share field Person.id at node 'health'"]
}

test_the_first_covering_agreement_by_id_decides if {
	shared := object.union(planning, {
		"requester": {"agency": "council", "roles": ["analyst", "researcher"], "client": "portal"},
		"fields": ["Area.code"],
	})
	d := decision.decision with input as shared with data.documents as documents
	d.agreement == "dsa-a-research"
}
