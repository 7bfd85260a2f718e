// Guildhall's GraphiQL page: loaded after React, ReactDOM and GraphiQL (UMD globals).
(function () {
  'use strict';

  var defaultQuery = [
    '# Guildhall GraphiQL',
    '#',
    '# Most fields need a signed-in viewer. Run',
    '#',
    '#   mutation {',
    '#     logIn(input: {email: "...", password: "..."}) {',
    '#       accessToken',
    '#     }',
    '#   }',
    '#',
    '# (or signUp) and put the access token in the',
    '# Headers tab below:',
    '#',
    '#   {"Authorization": "Bearer <access token>"}',
    '#',
    '# Access tokens are short-lived: log in again',
    '# when one expires. Docs (top left) lists every',
    '# type and field.',
    '',
    '{',
    '  viewer {',
    '    id',
    '    name',
    '    email',
    '  }',
    '}',
    '',
  ].join('\n');

  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
    }),
  );
})();
