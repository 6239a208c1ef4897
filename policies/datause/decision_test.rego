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

# -- helpers: the decision for the planning input changed by a patch, on these documents --

planning_with(patch) := d if {
	d := decision.decision with input as object.union(planning, patch)
		with data.documents as documents
}

# The planning input on documents changed by a patch (object.union merges objects deeply).
planning_on(changes) := d if {
	d := decision.decision with input as planning
		with data.documents as object.union(documents, changes)
}

# -- input validation: each malformed part is named, and nothing else is said -------------

test_each_malformed_part_of_the_input_is_named_alone if {
	planning_with({"purpose": 7}).reasons == ["input: the purpose is missing or not a string"]
	planning_with({"node": null}).reasons == ["input: the node is missing or not a string"]
	planning_with({"fields": []}).reasons == ["input: the touched fields are missing, empty or not strings"]
	planning_with({"fields": ["Area.code", 1]}).reasons == ["input: the touched fields are missing, empty or not strings"]
	planning_with({"fields": "Area.code"}).reasons == ["input: the touched fields are missing, empty or not strings"]
	planning_with({"aggregate": "true"}).reasons == ["input: whether the request is aggregate is missing"]
	planning_with({"now_ns": "2026-01-15T00:00:00Z"}).reasons == ["input: the evaluation time is missing or not a number"]
	planning_with({"requester": {"agency": null}}).reasons == ["input: the requester's agency or roles are missing or malformed"]
	planning_with({"requester": {"agency": "council", "roles": ["analyst", 1]}}).reasons == ["input: the requester's agency or roles are missing or malformed"]
	planning_with({"requester": "council"}).reasons == ["input: the requester's agency or roles are missing or malformed"]
}

test_a_malformed_input_is_denied_without_obligations if {
	d := planning_with({"aggregate": null})
	d.allow == false
	d.agreement == null
	d.policy_version == "test 1"
	d.obligations == {
		"aggregate_only": false, "min_cell": 0, "round_to": 0,
		"mask": [], "pseudonymise": [], "row_filters": [],
	}
}

test_an_unknown_purpose_beside_a_malformed_part_names_only_the_malformed_part if {
	planning_with({"purpose": "marketing", "node": 3}).reasons == ["input: the node is missing or not a string"]
}

# -- the register and the agreements in force -----------------------------------------------

test_a_registered_purpose_without_an_agreement_is_refused if {
	d := decision.decision with input as object.union(planning, {"purpose": "official-statistics"})
		with data.documents as object.union(documents, {"purposes": ["official-statistics", "research", "service-planning"]})
	d.reasons == ["no agreement in force lets agency 'council' with these roles use data held at node 'health' for purpose 'official-statistics'"]
}

test_an_agreement_that_is_not_active_allows_nothing if {
	every status in ["draft", "suspended", "ended"] {
		d := planning_on({"agreements": {"dsa-b-planning": {"status": status}}})
		d.allow == false
		d.reasons == [
			"agreement dsa-a-research would apply but shares data only with the roles: researcher",
			concat("", ["agreement dsa-b-planning would apply but is ", status, ", not active"]),
			"no agreement in force lets agency 'council' with these roles use data held at node 'health' for purpose 'service-planning'",
		]
	}
}

test_an_agency_outside_the_parties_is_refused if {
	d := planning_with({"requester": {"agency": "housing", "roles": ["analyst"]}})
	d.reasons == ["no agreement in force lets agency 'housing' with these roles use data held at node 'health' for purpose 'service-planning'"]
}

test_a_role_the_agreement_does_not_name_is_refused if {
	planning_with({"requester": {"agency": "council", "roles": ["viewer"]}}).allow == false
	planning_with({"requester": {"agency": "council", "roles": []}}).allow == false
	planning_with({"requester": {"agency": "council", "roles": ["viewer", "analyst"]}}).allow == true
}

test_a_node_the_agreement_holds_no_data_at_is_refused if {
	d := planning_with({"node": "council"})
	d.reasons == ["no agreement in force lets agency 'council' with these roles use data held at node 'council' for purpose 'service-planning'"]
}

test_the_instant_before_the_start_is_outside_the_agreement if {
	planning_with({"now_ns": (10 * day) - 1}).allow == false
	planning_with({"now_ns": (20 * day) - 1}).allow == true
}

# -- fields and forms ---------------------------------------------------------------------

test_a_field_touched_twice_is_named_once if {
	d := planning_with({"fields": ["Person.id", "Area.code", "Person.id"]})
	d.reasons == ["agreement dsa-b-planning does not share field Person.id at node 'health'"]
}

test_when_no_agreement_covers_every_gap_of_every_agreement_in_force_is_named if {
	d := planning_with({
		"requester": {"agency": "council", "roles": ["analyst", "researcher"]},
		"fields": ["Area.count", "Person.id"],
	})
	d.reasons == [
		"agreement dsa-a-research does not share field Area.count at node 'health'",
		"agreement dsa-b-planning does not share field Person.id at node 'health'",
	]
}

test_when_the_first_agreement_by_id_lacks_a_field_the_next_decides if {
	d := planning_with({
		"requester": {"agency": "council", "roles": ["analyst", "researcher"]},
		"fields": ["Area.code", "Area.count"],
	})
	d.agreement == "dsa-b-planning"
	d.obligations.min_cell == 10
}

# -- obligations of the deciding agreement ------------------------------------------------

test_an_aggregate_request_without_aggregate_only_fields_is_not_aggregate_only if {
	d := decision.decision with input as object.union(research, {"aggregate": true})
		with data.documents as documents
	d.allow == true
	d.obligations.aggregate_only == false
	d.obligations.min_cell == 7
	d.obligations.round_to == 10
}

test_row_filters_follow_the_agreements_consent_and_opt_out_flags if {
	consent_only := planning_on({"agreements": {"dsa-b-planning": {"consent_required": true}}})
	consent_only.obligations.row_filters == [
		{"kind": "consent", "purpose": "service-planning"},
		{"kind": "agreement_period", "from": "2026-01-01", "until": "2026-12-31"},
	]
	opt_out_only := planning_on({"agreements": {"dsa-b-planning": {"national_data_opt_out_applies": true}}})
	opt_out_only.obligations.row_filters == [
		{"kind": "national_data_opt_out"},
		{"kind": "agreement_period", "from": "2026-01-01", "until": "2026-12-31"},
	]
}

test_masked_and_pseudonymised_fields_are_only_those_touched if {
	d := decision.decision with input as object.union(research, {"fields": ["Area.code", "Person.nhsNumber"]})
		with data.documents as documents
	d.obligations.mask == ["Person.nhsNumber"]
	d.obligations.pseudonymise == []
}

test_the_allow_reason_names_the_agreement_its_version_and_the_request if {
	planning_with({}).reasons == ["agreement dsa-b-planning (version 2) permits purpose 'service-planning' for agency 'council' at node 'health'"]
}
